import { decodeState, fnv1a32, stateError, STATE_HEADER_BYTES, STATE_MAGIC } from "../../assembly/state/stateWire";
import { STATE_ERR_DUPLICATE, STATE_ERR_SECTION_NONE, STATE_ERR_SECTION_ORDER, STATE_ERR_SECTION_TRUNCATED, STATE_ERR_WEIGHTS } from "../../assembly/errors";
import { ReplicaTable } from "../../assembly/state/replicaTable";

// A state with no replicas and these weights, checksummed as the control plane writes it.
function decodeWeights(wp: f32, wq: f32, wk: f32, wi: f32): bool {
  const len = STATE_HEADER_BYTES + 4;
  const buf = new ArrayBuffer(len);
  const p = changetype<usize>(buf);
  store<u32>(p, STATE_MAGIC);
  store<u16>(p, 1, 4);
  store<u16>(p, 0, 6);
  store<u64>(p, 1, 8);
  store<f32>(p, wp, 16);
  store<f32>(p, wq, 20);
  store<f32>(p, wk, 24);
  store<f32>(p, wi, 28);
  store<u32>(p, 0, 32);
  store<u32>(p + <usize>(len - 4), fnv1a32(p, len - 4));
  return decodeState(p, len) !== null;
}

describe("state weights", () => {
  it("accepts weights in [0, 1e6], not all 0", () => {
    expect(decodeWeights(3, 1, 1, 1)).toBe(true);
    expect(decodeWeights(0, 0, 0, 1e6)).toBe(true);
    expect(decodeWeights(1.4e-45, 0, 0, 0)).toBe(true);
  });
  it("refuses weights the control plane never sends", () => {
    expect(decodeWeights(0, 0, 0, 0)).toBe(false);
    expect(stateError).toBe(STATE_ERR_WEIGHTS);
    expect(decodeWeights(-1, 1, 1, 1)).toBe(false);
    expect(decodeWeights(NaN, 1, 1, 1)).toBe(false);
    expect(decodeWeights(Infinity, 1, 1, 1)).toBe(false);
    expect(decodeWeights(3, 1, 1, 1.5e6)).toBe(false);
    expect(decodeWeights(3e38, 0, 0, 0)).toBe(false);
  });
});

// A format 2 state with no replicas and the given sections ([tag, length] pairs; `declared` overrides the last length).
function decodeSections(tags: Array<u16>, lens: Array<u32>, declared: u32 = 0xffffffff): bool {
  let body = 0;
  for (let i = 0; i < lens.length; i++) body += 8 + <i32>lens[i];
  const len = STATE_HEADER_BYTES + body + 4;
  const buf = new ArrayBuffer(len);
  const p = changetype<usize>(buf);
  store<u32>(p, STATE_MAGIC);
  store<u16>(p, 2, 4);
  store<u64>(p, 1, 8);
  store<f32>(p, 1, 16);
  let o = STATE_HEADER_BYTES;
  for (let i = 0; i < tags.length; i++) {
    store<u16>(p + <usize>o, tags[i]);
    store<u32>(p + <usize>o, i == tags.length - 1 && declared != 0xffffffff ? declared : lens[i], 4);
    o += 8 + <i32>lens[i];
  }
  store<u32>(p + <usize>(len - 4), fnv1a32(p, len - 4));
  return decodeState(p, len) !== null;
}

describe("state sections", () => {
  it("skips sections of tags it does not know, in increasing tag order", () => {
    expect(decodeSections([60000], [5])).toBe(true);
    expect(decodeSections([60000, 60001], [0, 12])).toBe(true);
  });
  it("refuses a malformed section list", () => {
    expect(decodeSections([], [])).toBe(false);
    expect(stateError).toBe(STATE_ERR_SECTION_NONE);
    expect(decodeSections([60001, 60000], [0, 0])).toBe(false);
    expect(stateError).toBe(STATE_ERR_SECTION_ORDER);
    expect(decodeSections([60000, 60000], [0, 0])).toBe(false);
    expect(decodeSections([0], [0])).toBe(false);
    expect(decodeSections([60000], [4], 5)).toBe(false);
    expect(stateError).toBe(STATE_ERR_SECTION_TRUNCATED);
    expect(decodeSections([60000], [4], 0xfffffff0)).toBe(false);
  });
});

describe("ReplicaTable.indexOf", () => {
  it("finds each replica by its address, and nothing else", () => {
    const t = new ReplicaTable();
    const addresses = ["10.0.0.1:8000", "10.0.0.2:8000", "[fd00::1]:8000"];
    for (let i = 0; i < addresses.length; i++) t.add(addresses[i], true, false, 0, 0, 0, 0, 0);
    for (let i = 0; i < addresses.length; i++) expect(t.indexOf(addresses[i])).toBe(i);
    expect(t.indexOf("10.0.0.1:800")).toBe(-1);
    expect(t.indexOf("10.0.0.3:8000")).toBe(-1);
    expect(t.indexOf("")).toBe(-1);
    expect(new ReplicaTable().indexOf(addresses[0])).toBe(-1);
  });
});

// A format 1 state of these replicas (address, waiting), version `version`, checksummed.
function stateOf(addresses: Array<string>, waiting: Array<u16>, version: u64): ArrayBuffer {
  let len = STATE_HEADER_BYTES + 4;
  for (let i = 0; i < addresses.length; i++) len += 1 + String.UTF8.byteLength(addresses[i]) + 17;
  const buf = new ArrayBuffer(len);
  const p = changetype<usize>(buf);
  store<u32>(p, STATE_MAGIC);
  store<u16>(p, 1, 4);
  store<u64>(p, version, 8);
  store<f32>(p, 1, 16);
  store<u32>(p, addresses.length, 32);
  let o = STATE_HEADER_BYTES;
  for (let i = 0; i < addresses.length; i++) {
    const a = String.UTF8.encode(addresses[i]);
    store<u8>(p + <usize>o, <u8>a.byteLength);
    memory.copy(p + <usize>o + 1, changetype<usize>(a), a.byteLength);
    o += 1 + a.byteLength;
    store<u8>(p + <usize>o, 3);
    store<u16>(p + <usize>o, waiting[i], 1);
    o += 17;
  }
  store<u32>(p + <usize>(len - 4), fnv1a32(p, len - 4));
  return buf;
}

function decode(buf: ArrayBuffer, routedOn: ReplicaTable | null): ReplicaTable | null {
  return decodeState(changetype<usize>(buf), buf.byteLength, routedOn);
}

describe("decodeState against the table routed on", () => {
  it("takes a replica's address from the table routed on where it is the same at the same place, and decodes the rest", () => {
    const first = decode(stateOf(["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"], [1, 2, 3], 1), null)!;
    const next = decode(stateOf(["10.0.0.1:8000", "10.0.0.9:8000", "10.0.0.3:8000"], [4, 5, 6], 2), first)!;
    // The same objects where the bytes match; the changed one decoded on its own.
    expect(changetype<usize>(next.addresses[0])).toBe(changetype<usize>(first.addresses[0]));
    expect(changetype<usize>(next.addressBytes[2])).toBe(changetype<usize>(first.addressBytes[2]));
    expect(next.addresses[1]).toBe("10.0.0.9:8000");
    expect(next.waiting[0]).toBe(4);
    expect(next.waiting[2]).toBe(6);
    // Hashes and the set hash as a decode with nothing to take from.
    const alone = decode(stateOf(["10.0.0.1:8000", "10.0.0.9:8000", "10.0.0.3:8000"], [4, 5, 6], 2), null)!;
    for (let i = 0; i < 3; i++) expect(next.addressHash[i]).toBe(alone.addressHash[i]);
    expect(next.setHash).toBe(alone.setHash);
    expect(next.indexOf("10.0.0.9:8000")).toBe(1);
    expect(next.indexOf("10.0.0.2:8000")).toBe(-1);
  });
  it("still refuses a duplicate address taken from the table routed on", () => {
    const first = decode(stateOf(["10.0.0.1:8000", "10.0.0.2:8000"], [0, 0], 1), null)!;
    expect(decode(stateOf(["10.0.0.1:8000", "10.0.0.1:8000"], [0, 0], 2), first)).toBeNull();
    expect(stateError).toBe(STATE_ERR_DUPLICATE);
  });
});
