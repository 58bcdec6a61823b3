import { Candidates } from "../../assembly/scheduling/candidates";
import { Saturation, SaturationBound } from "../../assembly/admission/saturation";
import { sessionCandidate } from "../../assembly/scheduling/sessionAffinity";
import { LoraConfig, addLoraAffinity } from "../../assembly/scheduling/loraAffinity";
import { RequestTraits, modelKey, readBodyTraits } from "../../assembly/request/requestTraits";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { hashPrompt } from "../../assembly/request/promptHasher";
import { BlockHasher } from "../../assembly/prefix/blockHasher";
import { BASE_MODEL, LoraAdapters } from "../../assembly/state/loraSection";
import { EndpointSubset, MAX_SUBSET } from "../../assembly/request/endpointSubset";

function table(n: i32): ReplicaTable {
  const t = new ReplicaTable();
  for (let i = 0; i < n; i++) t.add("10.0.0." + (i + 1).toString() + ":8000", true, true, 0, 0, 0, 0, 0);
  return t;
}

function cands(n: i32): Candidates {
  const c = new Candidates();
  c.n = n;
  for (let i = 0; i < n; i++) {
    c.replica[i] = i;
    c.waiting[i] = 0;
    c.kvUsage[i] = 0;
    c.score[i] = 0;
  }
  return c;
}

function key(s: string): u64 {
  const b = String.UTF8.encode(s);
  return modelKey(changetype<usize>(b), <usize>b.byteLength);
}

describe("saturation", () => {
  it("marks replicas past the waiting or KV bound, and the room left below it", () => {
    const c = cands(3);
    c.waiting[0] = 5; c.waiting[1] = 2; c.kvUsage[2] = 0.8;
    const s = new Saturation(new SaturationBound());
    expect(s.mark(c, true)).toBe(1);
    expect(s.saturated[0]).toBe(true);
    expect(s.saturated[1]).toBe(false);
    expect(s.saturated[2]).toBe(true);
    expect(s.room).toBe(3.0);
  });
  it("without trusted metrics nothing is saturated", () => {
    const c = cands(2);
    c.waiting[0] = 50; c.waiting[1] = 50;
    const s = new Saturation(new SaturationBound());
    expect(s.mark(c, false)).toBe(2);
  });
});

describe("session affinity", () => {
  it("the same replica for a session, the next one when it saturates, any when all do", () => {
    const t = table(4);
    const c = cands(4);
    const s = new Saturation(new SaturationBound());
    const tr = new RequestTraits();
    tr.hasSession = true;
    tr.session = 0x1234567;
    s.mark(c, true);
    const home = sessionCandidate(t, c, s, tr);
    expect(home).toBeGreaterThanOrEqual(0);
    expect(sessionCandidate(t, c, s, tr)).toBe(home);
    c.waiting[home] = 9;
    s.mark(c, true);
    const next = sessionCandidate(t, c, s, tr);
    expect(next).not.toBe(home);
    for (let k = 0; k < 4; k++) c.waiting[k] = 9;
    s.mark(c, true);
    expect(sessionCandidate(t, c, s, tr)).toBe(home);
    tr.hasSession = false;
    expect(sessionCandidate(t, c, s, tr)).toBe(-1);
  });
});

describe("LoRA affinity", () => {
  it("adapter held 1, free slot 0.5, no slot 0; base models untouched", () => {
    const t = table(3);
    const l = new LoraAdapters();
    l.byKey.set(key("sql"), 0);
    l.byKey.set(key("base"), BASE_MODEL);
    l.known = [true, true, true];
    l.maxLora = [1, 2, 1];
    l.running = [1, 0, 1];
    l.start = [0, 1, 1, 2];
    l.members = [0, 1];
    l.anySlots = true;
    t.lora = l;
    const c = cands(3);
    const tr = new RequestTraits();
    tr.hasModel = true;
    tr.model = key("sql");
    const cfg = new LoraConfig();
    expect(addLoraAffinity(t, c, tr, cfg)).toBe(true);
    expect(c.score[0]).toBe(3.0);
    expect(c.score[1]).toBe(1.5);
    expect(c.score[2]).toBe(0.0);
    tr.model = key("base");
    expect(addLoraAffinity(t, cands(3), tr, cfg)).toBe(false);
  });
});

describe("request traits", () => {
  it("reads model and user from the top level only", () => {
    const hasher = new BlockHasher(64, 256);
    const body = String.UTF8.encode('{"messages":[{"role":"user","content":"hi","user":"x"}],"model":"sql","user":"alice"}');
    const tr = new RequestTraits();
    hashPrompt(changetype<usize>(body), <usize>body.byteLength, hasher);
    readBodyTraits(tr, true);
    expect(tr.hasModel).toBe(true);
    expect(tr.model).toBe(key("sql"));
    expect(tr.hasSession).toBe(true);
    const other = new RequestTraits();
    const b2 = String.UTF8.encode('{"model":"sql","user":"x"}');
    hashPrompt(changetype<usize>(b2), <usize>b2.byteLength, hasher);
    readBodyTraits(other, true);
    expect(other.session).not.toBe(tr.session);
    // A body without them leaves none behind from the last one.
    const b3 = String.UTF8.encode('{"prompt":"x"}');
    const none = new RequestTraits();
    hashPrompt(changetype<usize>(b3), <usize>b3.byteLength, hasher);
    readBodyTraits(none, true);
    expect(none.hasModel).toBe(false);
    expect(none.hasSession).toBe(false);
  });
});

function readSubset(s: string): EndpointSubset {
  const b = String.UTF8.encode(s);
  const e = new EndpointSubset();
  e.read(changetype<isize>(b), <isize>b.byteLength);
  return e;
}

describe("endpoint subset", () => {
  it("holds the replicas named between commas, blanks around them ignored, and no others", () => {
    const t = table(3);
    const e = readSubset(" 10.0.0.1:8000 ,\t10.0.0.3:8000,,");
    expect(e.count).toBe(2);
    expect(e.has(t.addressHash[0])).toBe(true);
    expect(e.has(t.addressHash[1])).toBe(false);
    expect(e.has(t.addressHash[2])).toBe(true);
  });

  it("without a subset every replica is in; an empty one holds none", () => {
    const t = table(2);
    const none = new EndpointSubset();
    expect(none.given).toBe(false);
    expect(none.has(t.addressHash[1])).toBe(true);
    const empty = readSubset(" , ");
    expect(empty.given).toBe(true);
    expect(empty.has(t.addressHash[0])).toBe(false);
  });

  it("keeps the first MAX_SUBSET of a longer list, and a copy holds the same", () => {
    let s = "";
    for (let i = 0; i < MAX_SUBSET + 10; i++) s += "10.0.1." + i.toString() + ":8000,";
    const e = readSubset(s);
    expect(e.count).toBe(MAX_SUBSET);
    const t = new ReplicaTable();
    t.add("10.0.1.0:8000", true, true, 0, 0, 0, 0, 0);
    t.add("10.0.1." + (MAX_SUBSET + 5).toString() + ":8000", true, true, 0, 0, 0, 0, 0);
    const c = new EndpointSubset();
    c.copyFrom(e);
    expect(c.has(t.addressHash[0])).toBe(true);
    expect(c.has(t.addressHash[1])).toBe(false);
  });
});
