// Whole-number flags: one parser (cli/toolArgs.ts, parseIntFlag) for every tool, whose error
// names the flag, the range and the value; positive numbers likewise (parsePositiveFlag).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIntFlag, parsePositiveFlag } from '../../cli/toolArgs.js';
import { runScript } from '../tools/npmScript.js';

test('parseIntFlag reads digits within the range', () => {
  assert.equal(parseIntFlag('requests', '0', 0), 0);
  assert.equal(parseIntFlag('requests', '3000', 1), 3000);
  assert.equal(parseIntFlag('shards', '16', 1, 16), 16);
  assert.equal(parseIntFlag('seed', '-7', Number.MIN_SAFE_INTEGER), -7);
  assert.equal(parseIntFlag('port', '007', 0, 65535), 7);
});

test('parseIntFlag refuses anything else, naming the flag, the range and the value', () => {
  for (const [value, min, max] of [
    ['', 1], [' 1', 1], ['1.5', 1], ['1e3', 1], ['0x10', 1], ['+1', 1], ['two', 1], ['1,000', 1],
    ['0', 1], ['-1', 0], ['17', 1, 16], ['9007199254740993', 0], ['-', Number.MIN_SAFE_INTEGER],
  ] as Array<[string, number, number?]>) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    assert.throws(() => parseIntFlag('requests', value, min, max), { message: `--requests must be a whole number ${range}; got '${value}'` }, `'${value}'`);
  }
});

test('parsePositiveFlag reads a finite number above 0 and refuses anything else, naming the flag and the value', () => {
  assert.equal(parsePositiveFlag('slo', '1500'), 1500);
  assert.equal(parsePositiveFlag('requests-scale', '0.05'), 0.05);
  for (const value of ['', '0', '-1', 'x', 'Infinity', 'NaN', '1,5']) {
    assert.throws(() => parsePositiveFlag('slo', value), { message: `--slo must be a positive number, got '${value}'` }, `'${value}'`);
  }
});

test('every tool with whole-number flags refuses a bad one through it (exit 2, the flag named, the usage shown)', async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['fuzz', ['--shards', '0'], /^fuzz: --shards must be a whole number from 1 to 16; got '0'/m],
    ['fuzz', ['--seed', '1.5'], /^fuzz: --seed must be a whole number >= -9007199254740991; got '1\.5'/m],
    ['chaos', ['--requests', '150.5'], /^chaos: --requests must be a whole number >= 100; got '150\.5'/m],
    ['bench:picker', ['--seconds', 'x'], /^bench:picker: --seconds must be a whole number >= 1; got 'x'/m],
    ['bench:control-plane', ['--replicas', '2,0'], /^bench:control-plane: --replicas must be a whole number >= 1; got '0'/m],
    ['bench:routing', ['--seed=-1'], /--seed must be a whole number from 0 to 4294967295; got '-1'/],
    ['bench:routing', ['--slo', '0'], /--slo must be a positive number, got '0'/],
    ['bench:filter', ['--requests', '0'], /^bench\/filter: --requests must be a whole number >= 1; got '0'/m],
  ];
  const runs = await Promise.all(cases.map(([tool, args]) => runScript(tool, args, 60_000)));
  cases.forEach(([tool, args, why], i) => {
    const r = runs[i];
    assert.equal(r.code, 2, `${tool} ${args.join(' ')}: exit ${r.code}, ${r.stderr}`);
    assert.match(r.stderr, why, `${tool} ${args.join(' ')}`);
    assert.match(r.stderr, /usage: /, `${tool} shows the usage`);
  });
});
