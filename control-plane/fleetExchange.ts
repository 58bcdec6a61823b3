// What the gateways of a fleet tell each other through the control plane
// (plugin/STATE_FORMAT.md, "Gateway fleet"): each gateway reports, with its
// long poll, the placements it made (checkpoint, replica, depth), the work
// it has queued on each replica and the content it has written into each
// replica's cache; each poller is answered with the placements the others
// made since it last heard, the sums of the others' work and content, and its
// position among the live gateways (so that gateways deciding at once on the
// same idle replicas each prefer their own share of them).
//
// Content counts are totals since the gateway's worker VMs started, sent whole
// with every report: a restarted control plane has them back at the first
// report of each gateway, and a gateway that restarts or leaves stops counting
// when it expires (its successor starts from 0 under a new id).
//
// Placements are kept per replica in an LRU sized like that replica's KV
// cache (what the engine itself would still hold), and in one log in the
// order they arrived, each with a sequence number. A poller names the last
// sequence number it received; its answer is the live log entries after it,
// found by binary search, so an answer costs what is new to that poller. A
// placement made again, or evicted, leaves a tombstone in the log, which is
// compacted when tombstones outnumber the live entries.
import {
  MAX_SECTION_PLACEMENTS, SECTION_FLEET_POSITION, SECTION_OTHER_CONTENT, SECTION_OTHER_WORK, SECTION_PLACEMENTS, encodeFleetPosition,
  encodeOtherContentSection, encodeOtherWorkSection, encodePlacementsSection, type FleetPosition, type OtherContentSection, type OtherWorkSection,
  type PlacementsSection, type PollReport, type ReplicaWork,
} from './fleetWire.js';
import type { ReplicaState, RouterState, StateSection } from './stateWire.js';

/** A replica's KV cache in tokens when it does not say. */
const DEFAULT_CAPACITY_TOKENS = 150_000;
/** Tokens per 64-character block (4 characters a token). */
const TOKENS_PER_BLOCK = 16;
/**
 * Checkpoints are not blocks: a prompt of 16 blocks has 16 checkpoints, one of
 * 128 blocks 23, one of 3,750 blocks 250; 4 blocks a checkpoint errs towards
 * remembering (the filter's index sizes its quotas the same way).
 */
const BLOCKS_PER_CHECKPOINT = 4;
/** Placements kept for the whole fleet at most, as many as the filter's shared index holds. */
export const MAX_PLACEMENTS = 262_144;
/** A replica's LRU never holds fewer. */
const MIN_REPLICA_PLACEMENTS = 16;
/** A gateway that has not polled for this long is gone: its work no longer counts. */
export const GATEWAY_EXPIRY_MS = 10_000;
/**
 * A new placement, or a gateway joining or leaving, is published this soon
 * after the last fleet publish: gateways that hear of each other's placements
 * within a few milliseconds do not all place on the replica each saw idle.
 */
export const PLACEMENT_PUBLISH_MS = 1;
/** Changed work alone (no placement) is published at most this often: its changes come with every token. */
export const WORK_PUBLISH_MS = 20;
/** Gateways tracked at most; a report from one more is still taken in when an expired one makes room. */
const MAX_GATEWAYS = 1024;

interface Entry {
  seq: number;
  hash: bigint;
  replica: ReplicaPlacements;
  depth: number;
  gateway: bigint;
  live: boolean;
}

interface ReplicaPlacements {
  address: string;
  capacity: number;
  /** checkpoint hash -> its live entry */
  byHash: Map<bigint, Entry>;
  /** entries in placement order from `head` (dead ones are skipped): the LRU's eviction order */
  order: Entry[];
  head: number;
}

interface Gateway {
  lastMs: number;
  /** by replica address */
  work: Map<string, ReplicaWork>;
  /** content written, in CONTENT_UNIT_TOKENS, by replica address */
  content: Map<string, number>;
  /** the last answer's placements section: its `through`, and whether it was cut at the section's limit */
  lastThrough: number;
  lastPageFull: boolean;
}

export interface FleetExchangeOptions {
  /** xxHash64 (seed 0) of a replica's address, as the filter names replicas */
  hashAddress(address: string): bigint;
  now?: () => number;
  /** Called when a report brings news for the other gateways (the control plane's publish timer). */
  onNews?: () => void;
}

export class FleetExchange {
  private readonly replicas = new Map<string, ReplicaPlacements>();
  private readonly byHash = new Map<bigint, ReplicaPlacements>();
  private readonly hashOf = new Map<string, bigint>();
  private readonly gateways = new Map<bigint, Gateway>();
  private log: Entry[] = [];
  private liveCount = 0;
  /** Sequence numbers start at the wall clock in microseconds, so a restarted control plane never reuses one a gateway holds. */
  private lastSeq = Date.now() * 1000;
  private readonly now: () => number;
  /** Work of every gateway summed per replica; null when a report changed it. */
  private totals: Map<string, ReplicaWork> | null = null;
  /** Content of every gateway summed per replica; null when a report changed it. */
  private contentTotals: Map<string, number> | null = null;
  /** The replica index of each address in the state the answers are built for. */
  private indexState: RouterState | null = null;
  private indexOf = new Map<string, number>();
  /** Something the other gateways should hear of arrived since the last takeChanged(): work, and placements or the gateways themselves. */
  private changedValue = false;
  private placedValue = false;

  constructor(private readonly opts: FleetExchangeOptions) {
    this.now = opts.now ?? Date.now;
  }

  get gatewayCount(): number { return this.gateways.size; }
  get placementCount(): number { return this.liveCount; }
  get newestSeq(): number { return this.lastSeq; }

  /** Something the other gateways should hear of arrived and was not taken yet. */
  get hasNews(): boolean { return this.changedValue; }

  /** How long after the last fleet publish the news waiting should be published: PLACEMENT_PUBLISH_MS or WORK_PUBLISH_MS (Infinity: none waiting). */
  get newsDelayMs(): number {
    return this.placedValue ? PLACEMENT_PUBLISH_MS : this.changedValue ? WORK_PUBLISH_MS : Infinity;
  }

  /** True once after something the other gateways should hear of arrived (the version should move). */
  takeChanged(): boolean {
    this.expireGateways();
    const c = this.changedValue;
    this.changedValue = false;
    this.placedValue = false;
    return c;
  }

  /** Forgets the gateways that stopped polling (their leaving is news): the control plane's staleness checks. */
  expire(): void {
    this.expireGateways();
  }

  /** Follows the replica set of each published state: LRU sizes from the KV caches; a replica that left takes its placements along. */
  setReplicas(replicas: readonly ReplicaState[]): void {
    const want = new Set<string>();
    for (const r of replicas) want.add(r.address);
    for (const [a, rp] of this.replicas) {
      if (want.has(a)) continue;
      for (const e of rp.byHash.values()) { e.live = false; this.liveCount--; }
      this.replicas.delete(a);
      this.byHash.delete(this.hashOf.get(a)!);
    }
    const perReplicaCap = Math.max(MIN_REPLICA_PLACEMENTS, Math.floor(MAX_PLACEMENTS / Math.max(1, replicas.length)));
    for (const r of replicas) {
      const tokens = r.kvCapacityTokens > 0 ? r.kvCapacityTokens : DEFAULT_CAPACITY_TOKENS;
      const capacity = Math.max(MIN_REPLICA_PLACEMENTS, Math.min(perReplicaCap, Math.floor(tokens / TOKENS_PER_BLOCK / BLOCKS_PER_CHECKPOINT)));
      let rp = this.replicas.get(r.address);
      if (!rp) {
        let h = this.hashOf.get(r.address);
        if (h === undefined) { h = this.opts.hashAddress(r.address); this.hashOf.set(r.address, h); }
        rp = { address: r.address, capacity, byHash: new Map(), order: [], head: 0 };
        this.replicas.set(r.address, rp);
        this.byHash.set(h, rp);
      }
      rp.capacity = capacity;
      this.evict(rp);
    }
    for (const a of this.hashOf.keys()) if (!this.replicas.has(a)) this.hashOf.delete(a);
    this.compact();
  }

  /**
   * Takes in one gateway's report. Returns true when that poller should be
   * answered at once even if the state's version is the one it holds: its
   * last answer was cut at the section's limit and it has more to catch up on.
   */
  ingest(r: PollReport): boolean {
    const now = this.now();
    let g = this.gateways.get(r.gatewayId);
    if (!g) {
      this.expireGateways();
      if (this.gateways.size >= MAX_GATEWAYS) return false;
      g = { lastMs: now, work: new Map(), content: new Map(), lastThrough: 0, lastPageFull: false };
      this.gateways.set(r.gatewayId, g);
      this.changedValue = this.placedValue = true; // every gateway's position moves
    }
    g.lastMs = now;
    const work = new Map<string, ReplicaWork>();
    for (const w of r.work) {
      const rp = this.byHash.get(w.replica);
      if (rp && (w.queuedTokens > 0 || w.decodeWork > 0)) work.set(rp.address, { queuedTokens: w.queuedTokens, decodeWork: w.decodeWork });
    }
    // A gateway's own placements and work are news only to the others: a lone gateway's move no version.
    const heard = this.gateways.size > 1;
    if (!sameWork(g.work, work)) { g.work = work; this.totals = null; this.changedValue ||= heard; }
    // Content grows with every request, as the work and placements that move the version do: it rides along, never news alone.
    const content = new Map<string, number>();
    for (const c of r.content) {
      const rp = this.byHash.get(c.replica);
      if (rp && c.writtenUnits > 0) content.set(rp.address, c.writtenUnits);
    }
    if (!sameContent(g.content, content)) { g.content = content; this.contentTotals = null; }
    for (const p of r.placements) {
      const rp = this.byHash.get(p.replica);
      if (!rp) continue; // a replica this control plane does not (or no longer) know
      const old = rp.byHash.get(p.hash);
      if (old) { old.live = false; this.liveCount--; }
      const e: Entry = { seq: ++this.lastSeq, hash: p.hash, replica: rp, depth: p.depth, gateway: r.gatewayId, live: true };
      rp.byHash.set(p.hash, e);
      rp.order.push(e);
      this.log.push(e);
      this.liveCount++;
      this.evict(rp);
      this.changedValue ||= heard;
      this.placedValue ||= heard;
    }
    this.compact();
    if (this.changedValue) this.opts.onNews?.();
    return g.lastPageFull && Number(r.placementsSeen) === g.lastThrough;
  }

  /**
   * The sections of `state` for the gateway that sent `report`: the
   * placements the other gateways made after the ones it has seen (at most a
   * section's worth, oldest first), their work per replica, its position
   * among the live gateways, and the other gateways' content per replica.
   */
  sectionsFor(state: RouterState, report: PollReport): StateSection[] {
    this.indexFor(state);
    const g = this.gateways.get(report.gatewayId);
    const placements = this.placementsAfter(Number(report.placementsSeen), report.gatewayId);
    if (g) { g.lastThrough = Number(placements.through); g.lastPageFull = placements.placements.length === MAX_SECTION_PLACEMENTS; }
    const sections: StateSection[] = [{ tag: SECTION_PLACEMENTS, bytes: encodePlacementsSection(placements, state.replicas.length) }];
    const work = this.othersWork(report.gatewayId);
    if (work.length > 0) sections.push({ tag: SECTION_OTHER_WORK, bytes: encodeOtherWorkSection(work, state.replicas.length) });
    const position = this.positionOf(report.gatewayId);
    if (position) sections.push({ tag: SECTION_FLEET_POSITION, bytes: encodeFleetPosition(position) });
    const content = this.othersContent(report.gatewayId);
    if (content.length > 0) sections.push({ tag: SECTION_OTHER_CONTENT, bytes: encodeOtherContentSection(content, state.replicas.length) });
    return sections;
  }

  /** The gateway's index among the live gateways sorted by id, and their count; null for one not tracked. */
  positionOf(gatewayId: bigint): FleetPosition | null {
    if (!this.gateways.has(gatewayId)) return null;
    let index = 0;
    for (const id of this.gateways.keys()) if (id < gatewayId) index++;
    return { index, count: this.gateways.size };
  }

  private indexFor(state: RouterState): void {
    if (this.indexState === state) return;
    this.indexState = state;
    this.indexOf = new Map(state.replicas.map((r, i) => [r.address, i]));
  }

  private placementsAfter(seen: number, gatewayId: bigint): PlacementsSection {
    const log = this.log;
    // A cursor from another control plane's numbering (ahead of ours) starts over.
    const cursor = seen > this.lastSeq ? 0 : seen;
    let lo = 0, hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (log[mid]!.seq <= cursor) lo = mid + 1; else hi = mid;
    }
    const out: PlacementsSection['placements'] = [];
    let through = this.lastSeq;
    for (let i = lo; i < log.length; i++) {
      const e = log[i]!;
      if (!e.live || e.gateway === gatewayId) continue;
      const replica = this.indexOf.get(e.replica.address);
      if (replica === undefined) continue;
      if (out.length === MAX_SECTION_PLACEMENTS) { through = log[i - 1]!.seq; break; }
      out.push({ hash: e.hash, replica, depth: e.depth });
    }
    return { through: BigInt(through), placements: out };
  }

  private othersWork(gatewayId: bigint): OtherWorkSection {
    if (!this.totals) {
      const totals = new Map<string, ReplicaWork>();
      for (const g of this.gateways.values()) {
        for (const [a, w] of g.work) {
          const t = totals.get(a);
          if (t) { t.queuedTokens += w.queuedTokens; t.decodeWork += w.decodeWork; } else totals.set(a, { ...w });
        }
      }
      this.totals = totals;
    }
    const own = this.gateways.get(gatewayId)?.work;
    const out: OtherWorkSection = [];
    for (const [a, t] of this.totals) {
      const replica = this.indexOf.get(a);
      if (replica === undefined) continue;
      const mine = own?.get(a);
      const queuedTokens = t.queuedTokens - (mine?.queuedTokens ?? 0);
      const decodeWork = t.decodeWork - (mine?.decodeWork ?? 0);
      if (queuedTokens > 0 || decodeWork > 0) out.push({ replica, queuedTokens, decodeWork });
    }
    return out;
  }

  private othersContent(gatewayId: bigint): OtherContentSection {
    if (!this.contentTotals) {
      const totals = new Map<string, number>();
      for (const g of this.gateways.values()) for (const [a, units] of g.content) totals.set(a, (totals.get(a) ?? 0) + units);
      this.contentTotals = totals;
    }
    const own = this.gateways.get(gatewayId)?.content;
    const out: OtherContentSection = [];
    for (const [a, total] of this.contentTotals) {
      const replica = this.indexOf.get(a);
      if (replica === undefined) continue;
      const writtenUnits = total - (own?.get(a) ?? 0);
      if (writtenUnits > 0) out.push({ replica, writtenUnits });
    }
    return out;
  }

  private evict(rp: ReplicaPlacements): void {
    while (rp.byHash.size > rp.capacity) {
      const e = rp.order[rp.head++]!;
      if (!e.live) continue; // placed again since, or gone with its replica
      e.live = false;
      rp.byHash.delete(e.hash);
      this.liveCount--;
    }
    if (rp.head > 1024 && rp.head * 2 > rp.order.length) {
      rp.order = rp.order.slice(rp.head).filter((e) => e.live);
      rp.head = 0;
    }
  }

  private compact(): void {
    if (this.log.length <= 2 * this.liveCount + 1024) return;
    this.log = this.log.filter((e) => e.live);
  }

  private expireGateways(): void {
    const now = this.now();
    for (const [id, g] of this.gateways) {
      if (now - g.lastMs <= GATEWAY_EXPIRY_MS) continue;
      this.gateways.delete(id);
      this.changedValue = this.placedValue = true; // every gateway's position moves
      if (g.work.size > 0) this.totals = null;
      if (g.content.size > 0) this.contentTotals = null;
    }
  }
}

function sameWork(a: Map<string, ReplicaWork>, b: Map<string, ReplicaWork>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, w] of a) {
    const v = b.get(k);
    if (!v || v.queuedTokens !== w.queuedTokens || v.decodeWork !== w.decodeWork) return false;
  }
  return true;
}

function sameContent(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
