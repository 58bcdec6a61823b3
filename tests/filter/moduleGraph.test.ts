// The filter's source stays navigable: no import cycle among its modules, and
// no file grows past the size a reader can hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../../assembly');
const MAX_LINES = 600;

function sources(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : name.endsWith('.ts') ? [p] : [];
  });
}

/** Each module's imports of other modules under assembly/ (relative specifiers only). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(ROOT)) {
    const deps: string[] = [];
    for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gms)) {
      deps.push(resolve(dirname(file), m[1]) + '.ts');
    }
    graph.set(file, deps);
  }
  return graph;
}

test('assembly/ has no import cycle', () => {
  const graph = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push(stack.slice(stack.indexOf(f)).concat(f).map((p) => relative(ROOT, p)).join(' -> '));
      return;
    }
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) visit(d);
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f);
  assert.deepEqual(cycles, []);
  for (const [f, deps] of graph) {
    for (const d of deps) assert.ok(graph.has(d), `${relative(ROOT, f)} imports ${relative(ROOT, d)}, which does not exist`);
  }
});

test(`no assembly/ source file is over ${MAX_LINES} lines`, () => {
  const long = sources(ROOT)
    .map((f) => ({ f: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length }))
    .filter((x) => x.lines > MAX_LINES);
  assert.deepEqual(long, []);
});
