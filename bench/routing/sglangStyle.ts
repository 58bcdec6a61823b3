// SGLang's cache-aware router (sglang-router 0.3.2 and vllm-router 0.1.17,
// `--policy cache_aware`) as its documentation and launcher describe it
// (REFERENCE §6, §8), written outside the wasm so prefix-router can be
// compared with it in simulated time as bench:peers compares with the real one:
// - one approximate radix tree of request text per worker: what the router
//   sent there, character by character, whatever the engine kept;
// - loads are the router's own in-flight counts;
// - when max load - min load > 64 and max load > 1.5 x min load, the least
//   loaded worker; otherwise, when the best match covers more than 30% of
//   the text, the worker that matched it; otherwise the worker with the
//   smallest tree (the least text sent to it), which spreads new prefixes
//   evenly over the workers' caches;
// - the chosen worker's tree gets the whole text.
// Trees are pruned to 2^26 characters every 60 s (the defaults); runs here
// stay far below that, so pruning never happens and is left out.
import type { Decision, RoutingPolicy } from './policy.js';
import type { SimRequest } from './workloads.js';

export const SGLANG_CACHE_THRESHOLD = 0.3;
export const SGLANG_BALANCE_ABS = 64;
export const SGLANG_BALANCE_REL = 1.5;

/** A compressed radix tree of strings: what one worker was sent. */
class RadixNode {
  readonly children = new Map<string, RadixNode>();
  constructor(public edge: string) {}
}

export class TextTree {
  private readonly root = new RadixNode('');
  /** Characters stored (the sum of every edge). */
  size = 0;

  /** Length of the longest prefix of `text` the tree holds. */
  match(text: string): number {
    let node = this.root, at = 0;
    for (;;) {
      if (at >= text.length) return at;
      const child = node.children.get(text[at]!);
      if (!child) return at;
      const common = commonPrefix(child.edge, text, at);
      at += common;
      if (common < child.edge.length) return at;
      node = child;
    }
  }

  insert(text: string): void {
    let node = this.root, at = 0;
    while (at < text.length) {
      const key = text[at]!;
      const child = node.children.get(key);
      if (!child) {
        node.children.set(key, new RadixNode(text.slice(at)));
        this.size += text.length - at;
        return;
      }
      const common = commonPrefix(child.edge, text, at);
      if (common < child.edge.length) {
        // Split the edge where the text leaves it.
        const rest = new RadixNode(child.edge.slice(common));
        for (const [k, v] of child.children) rest.children.set(k, v);
        child.children.clear();
        child.children.set(rest.edge[0]!, rest);
        child.edge = child.edge.slice(0, common);
      }
      at += common;
      node = child;
    }
  }
}

function commonPrefix(edge: string, text: string, at: number): number {
  const n = Math.min(edge.length, text.length - at);
  let i = 0;
  while (i < n && edge.charCodeAt(i) === text.charCodeAt(at + i)) i++;
  return i;
}

export class SglangStylePolicy implements RoutingPolicy {
  readonly name = 'sglang-style';
  private readonly trees: TextTree[];
  private readonly load: number[];

  constructor(private readonly n: number) {
    this.trees = Array.from({ length: n }, () => new TextTree());
    this.load = new Array<number>(n).fill(0);
  }

  onScrape(): void {}
  advanceTo(): void {}
  onFirstToken(): void {}
  onFinish(d: Decision): void { if (d.replica >= 0) this.load[d.replica]!--; }
  async close(): Promise<void> {}

  route(req: SimRequest): Decision {
    const text = req.prompt;
    const replica = this.choose(text);
    this.trees[replica]!.insert(text);
    this.load[replica]!++;
    return { replica };
  }

  private choose(text: string): number {
    let most = 0, least = 0;
    for (let i = 1; i < this.n; i++) {
      if (this.load[i]! > this.load[most]!) most = i;
      if (this.load[i]! < this.load[least]!) least = i;
    }
    const maxLoad = this.load[most]!, minLoad = this.load[least]!;
    if (maxLoad - minLoad > SGLANG_BALANCE_ABS && maxLoad > SGLANG_BALANCE_REL * minLoad) return least;
    let best = 0, bestMatch = -1;
    for (let i = 0; i < this.n; i++) {
      const m = this.trees[i]!.match(text);
      if (m > bestMatch) { bestMatch = m; best = i; }
    }
    if (text.length > 0 && bestMatch / text.length > SGLANG_CACHE_THRESHOLD) return best;
    let smallest = 0;
    for (let i = 1; i < this.n; i++) if (this.trees[i]!.size < this.trees[smallest]!.size) smallest = i;
    return smallest;
  }
}
