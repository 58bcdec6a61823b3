// The SGLang-style cache-aware picker re-implementation, on hand-made cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SglangStylePolicy, TextTree } from '../../bench/routing/sglangStyle.js';
import type { SimRequest } from '../../bench/routing/workloads.js';

const req = (id: number, prompt: string): SimRequest => ({ id, arrivalUs: id, prompt, promptTokens: prompt.length / 4, blockHashes: [], outputTokens: 8, group: prompt.slice(0, 4) });

test('the radix tree matches the longest stored prefix and counts each character once', () => {
  const t = new TextTree();
  t.insert('system: be brief. question one');
  t.insert('system: be brief. question two');
  t.insert('other');
  assert.equal(t.match('system: be brief. question three'), 'system: be brief. question t'.length);
  assert.equal(t.match('system: be brief. question one more'), 'system: be brief. question one'.length);
  assert.equal(t.match('sys'), 3);
  assert.equal(t.match('nothing'), 0);
  assert.equal(t.size, 'system: be brief. question one'.length + 'two'.length + 'other'.length);
  t.insert('system'); // a prefix of a stored string: splits an edge, adds nothing
  assert.equal(t.size, 'system: be brief. question one'.length + 'two'.length + 'other'.length);
  assert.equal(t.match('system: x'), 'system: '.length);
});

test('a prompt matching more than 30% goes to the worker holding it; otherwise to the smallest tree', () => {
  const p = new SglangStylePolicy(3);
  const a = p.route(req(0, 'A'.repeat(100) + 'q1'));
  const b = p.route(req(1, 'B'.repeat(50) + 'q2'));
  assert.notEqual(a.replica, b.replica); // new prefix: the empty tree, not A's worker
  const c = p.route(req(2, 'C'.repeat(10) + 'q3'));
  assert.equal(new Set([a.replica, b.replica, c.replica]).size, 3);
  assert.equal(p.route(req(3, 'A'.repeat(100) + 'q4')).replica, a.replica);
  // 'C' x 10 is under 30% of this prompt: the smallest tree (C's worker, 13 characters) takes it.
  assert.equal(p.route(req(4, 'C'.repeat(10) + 'x'.repeat(40))).replica, c.replica);
});

test('past both balance thresholds the least loaded worker takes it whatever it holds', () => {
  const p = new SglangStylePolicy(2);
  const held = p.route(req(0, 'H'.repeat(100)));
  const other = 1 - held.replica;
  const open = [held];
  for (let i = 1; i <= 64; i++) open.push(p.route(req(i, 'H'.repeat(100) + i)));
  assert.ok(open.every((d) => d.replica === held.replica)); // 65 vs 0: max - min > 64 only from the next one
  assert.equal(p.route(req(100, 'H'.repeat(100) + 'next')).replica, other);
  for (const d of open.slice(0, 10)) p.onFinish(d);
  assert.equal(p.route(req(101, 'H'.repeat(100) + 'again')).replica, held.replica); // 55 vs 1: under 64 apart
});
