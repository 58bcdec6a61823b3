// Child processes of a peers run: start with a log file, wait until an HTTP URL answers, read the
// CPU time of a process tree from /proc, stop by pid (the whole process group).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  log: string;
  /** Stops the process group (SIGTERM, then SIGKILL after 3 s). */
  stop(): Promise<void>;
  exited(): boolean;
}

export function startChild(name: string, command: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env): Child {
  const fd = openSync(log, 'a');
  const p = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true, env });
  closeSync(fd);
  let done = false;
  p.on('exit', () => { done = true; });
  p.on('error', () => { done = true; });
  return {
    name, pid: p.pid ?? -1, process: p, log,
    exited: () => done,
    stop: async () => {
      if (done || p.pid === undefined) return;
      const kill = (sig: NodeJS.Signals) => { try { process.kill(-p.pid!, sig); } catch { /* gone */ } };
      kill('SIGTERM');
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      const t = setTimeout(() => kill('SIGKILL'), 3000);
      await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
      clearTimeout(t);
    },
  };
}

/** A free loopback TCP port (bound and released; the caller binds it next). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits until GET url answers with a 2xx; throws with the log's tail when a child exits or time runs out. */
export async function waitForHttp(url: string, children: Child | Child[] | null, timeoutMs: number): Promise<void> {
  const watched = children === null ? [] : Array.isArray(children) ? children : [children];
  const child = watched.at(-1) ?? null;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const gone = watched.find((c) => c.exited());
    if (gone) throw new Error(`${gone.name} exited while starting:\n${tail(gone.log)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${child?.name ?? url} not ready after ${timeoutMs} ms (${last})${child ? `:\n${tail(child.log)}` : ''}`);
}

export function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** pid and its descendants, from /proc (the processes still alive). */
function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    if (out.includes(p) || !existsSync(`/proc/${p}`)) return;
    out.push(p);
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { /* gone */ }
    for (const t of tasks) {
      let children = '';
      try { children = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8'); } catch { /* gone */ }
      for (const c of children.split(' ').filter(Boolean)) visit(Number(c));
    }
  };
  visit(pid);
  return out;
}

/** CPU seconds (user + system) used so far by pid and its descendants, from /proc. */
export function cpuSeconds(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
    } catch { /* gone */ }
  }
  return total;
}

/** cpuSeconds summed over processes (a router's, or the part of them off its request path). */
export function cpuSecondsOf(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + cpuSeconds(p), 0);
}

/**
 * On-CPU nanoseconds of the live threads of pid and its descendants (/proc/.../schedstat): finer
 * than cpuSeconds' clock ticks, for the CPU of a few hundred requests; threads that ended are not counted.
 */
export function cpuNs(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; }
    for (const t of tasks) {
      try { total += Number(readFileSync(`/proc/${p}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
    }
  }
  return total;
}

/** cpuNs summed over processes. */
export function cpuNsOf(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + cpuNs(p), 0);
}

/** The cores each group of processes uses over the next `seconds`: their threads' on-CPU time over the wall time. */
export async function coresOver(groups: ReadonlyArray<readonly number[]>, seconds: number): Promise<number[]> {
  const before = groups.map(cpuNsOf);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wallS = (performance.now() - t0) / 1000;
  return groups.map((g, i) => (cpuNsOf(g) - before[i]!) / 1e9 / wallS);
}
