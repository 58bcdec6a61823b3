import { BlockHasher } from "../../assembly/prefix/blockHasher";
import { ScanStatus, hashPrompt } from "../../assembly/request/promptHasher";
import { xxh64 } from "../../assembly/prefix/hash";

const h = new BlockHasher(8, 64);
const g = new BlockHasher(8, 64);

function scan(json: string, into: BlockHasher): ScanStatus {
  const b = String.UTF8.encode(json);
  return hashPrompt(changetype<usize>(b), b.byteLength, into);
}

function same(a: BlockHasher, b: BlockHasher): bool {
  if (a.count != b.count || a.textBytes != b.textBytes || a.lastHash != b.lastHash) return false;
  for (let i = 0; i < a.checkpoints; i++) if (a.hashes[i] != b.hashes[i]) return false;
  return a.firstKey() == b.firstKey();
}

/** Hashes the first `len` bytes of `json`, as a body still arriving. */
function scanCut(json: string, len: i32, into: BlockHasher): ScanStatus {
  const b = String.UTF8.encode(json);
  return hashPrompt(changetype<usize>(b), <usize>len, into, true);
}

describe("hashPrompt", () => {
  it("hashes a body cut short as far as its prompt has come: the same leading blocks", () => {
    const full = '{"model":"m","prompt":"hello world, hello world, and so on and so forth","max_tokens":5}';
    scan(full, h);
    // Cut inside the prompt, after 3 of its blocks.
    expect(scanCut(full, 22 + 28, g)).toBe(ScanStatus.Ok);
    expect(g.count).toBe(3);
    for (let i = 0; i < 3; i++) expect(g.hashes[i]).toBe(h.hashes[i]);
    // Cut after the prompt: all of it.
    expect(scanCut(full, full.length - 5, g)).toBe(ScanStatus.Ok);
    expect(same(h, g)).toBe(true);
    // A whole body read as cut hashes as it does whole.
    expect(scanCut(full, full.length, g)).toBe(ScanStatus.Ok);
    expect(same(h, g)).toBe(true);
    // Not cut, a truncated body is no JSON.
    const b = String.UTF8.encode(full);
    expect(hashPrompt(changetype<usize>(b), 50, g)).toBe(ScanStatus.NotJson);
  });
  it("hashes chat messages cut short as far as they have come", () => {
    const full = '{"model":"m","messages":[{"role":"system","content":"be brief, be kind, be right"},{"role":"user","content":"why is the sky blue today?"}]}';
    scan(full, h);
    expect(scanCut(full, full.length - 20, g)).toBe(ScanStatus.Ok);
    expect(g.count).toBeGreaterThan(3);
    for (let i = 0; i < g.checkpoints; i++) expect(g.hashes[i]).toBe(h.hashes[i]);
  });
  it("hashes a completions prompt string", () => {
    expect(scan('{"model":"m","prompt":"hello world, hello world"}', h)).toBe(ScanStatus.Ok);
    expect(h.count).toBe(3);
    expect(h.textBytes).toBe(24);
  });
  it("does not depend on key order or whitespace", () => {
    scan('{"model":"m","prompt":"hello world, hello world","max_tokens":5}', h);
    scan('{ "max_tokens" : 5 ,\n "prompt":"hello world, hello world", "model" : "m" }', g);
    expect(same(h, g)).toBe(true);
  });
  it("seeds with the model", () => {
    scan('{"model":"a","prompt":"hello world, hello world"}', h);
    scan('{"model":"b","prompt":"hello world, hello world"}', g);
    expect(h.hashes[0]).not.toBe(g.hashes[0]);
  });
  it("decodes escapes, so equal text hashes equal", () => {
    scan('{"prompt":"caf\\u00e9 \\"q\\" \\n tab\\tend"}', h);
    scan('{"prompt":"café \\"q\\" \\n tab\\tend"}', g);
    expect(same(h, g)).toBe(true);
  });
  it("hashes a string without escapes as one with the same text written with escapes, in every place a prompt can be", () => {
    // Plain strings are fed as they lie (the scan that found their end saw no escape); escaped ones are decoded.
    scan('{"prompt":"a long plain prompt / with slashes and more than a block"}', h);
    scan('{"prompt":"a long plain prompt \\/ with slashes and more than a block"}', g);
    expect(same(h, g)).toBe(true);
    scan('{"prompt":["first plain piece","second / piece"]}', h);
    scan('{"prompt":["first plain piece","second \\/ piece"]}', g);
    expect(same(h, g)).toBe(true);
    scan('{"messages":[{"role":"system","content":"be brief / be kind"},{"role":"user","content":[{"type":"text","text":"hi / there"}]}]}', h);
    scan('{"messages":[{"role":"sys\\u0074em","content":"be brief \\/ be kind"},{"role":"user","content":[{"type":"text","text":"hi \\/ there"}]}]}', g);
    expect(same(h, g)).toBe(true);
  });
  it("hashes a prompt after the model in one pass exactly as in two, whatever comes after it", () => {
    const text = "caf\\u00e9 \\\"quoted\\\" \\ud83d\\ude00 and a tab\\t, long enough for several eight-byte blocks";
    scan('{"prompt":"' + text + '","model":"m"}', g); // model after the prompt: the two-pass path
    expect(scan('{"model":"m","prompt":"' + text + '"}', h)).toBe(ScanStatus.Ok);
    expect(same(h, g)).toBe(true);
    // A later prompt wins, as a later key does in the two-pass path.
    scan('{"model":"m","prompt":"first prompt text here","prompt":"' + text + '"}', h);
    expect(same(h, g)).toBe(true);
    // A later model re-seeds: the prompt is hashed again with it.
    scan('{"model":"x","prompt":"' + text + '","model":"m"}', h);
    expect(same(h, g)).toBe(true);
    // messages still win over a prompt.
    scan('{"model":"m","messages":[{"role":"user","content":"hi there"}]}', g);
    scan('{"model":"m","prompt":"' + text + '","messages":[{"role":"user","content":"hi there"}]}', h);
    expect(same(h, g)).toBe(true);
    // Malformed after the prompt, or the prompt never closed: not JSON, as before.
    expect(scan('{"model":"m","prompt":"' + text + '", oops}', h)).toBe(ScanStatus.NotJson);
    expect(scan('{"model":"m","prompt":"never closed', h)).toBe(ScanStatus.NotJson);
    expect(scan('{"model":"m","prompt":"ends in a backslash\\', h)).toBe(ScanStatus.NotJson);
  });
  it("joins surrogate pairs", () => {
    scan('{"prompt":"\\ud83d\\ude00 smile smile"}', h);
    scan('{"prompt":"😀 smile smile"}', g);
    expect(same(h, g)).toBe(true);
  });
  it("replaces a lone surrogate without failing", () => {
    expect(scan('{"prompt":"\\ud83d alone and more text"}', h)).toBe(ScanStatus.Ok);
    expect(h.textBytes).toBeGreaterThan(0);
  });
  it("hashes chat messages: role and content in order, whatever the key order", () => {
    scan('{"model":"m","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hi"}]}', h);
    scan('{"messages":[{"content":"You are helpful.","role":"system"},{"content":"Hi","role":"user"}],"model":"m"}', g);
    expect(same(h, g)).toBe(true);
    scan('{"model":"m","messages":[{"role":"user","content":"You are helpful."},{"role":"user","content":"Hi"}]}', g);
    expect(same(h, g)).toBe(false);
  });
  it("hashes content parts by their text", () => {
    scan('{"messages":[{"role":"user","content":[{"type":"text","text":"part one "},{"type":"text","text":"part two"}]}]}', h);
    scan('{"messages":[{"role":"user","content":"part one part two"}]}', g);
    expect(same(h, g)).toBe(true);
  });
  it("shares the leading blocks of prompts that share a prefix", () => {
    scan('{"prompt":"SYSTEM PROMPT SHARED BY ALL then question one"}', h);
    scan('{"prompt":"SYSTEM PROMPT SHARED BY ALL then another question"}', g);
    expect(h.hashes[0]).toBe(g.hashes[0]);
    expect(h.hashes[2]).toBe(g.hashes[2]);
    expect(h.hashes[4]).not.toBe(g.hashes[4]);
  });
  it("tells apart array prompts split differently", () => {
    scan('{"prompt":["abcdefgh","ijklmnop"]}', h);
    scan('{"prompt":["abcdefghi","jklmnop"]}', g);
    expect(same(h, g)).toBe(false);
  });
  it("accepts token-array prompts", () => {
    expect(scan('{"prompt":[1,2,3,4,5,6,7,8,9,10,11]}', h)).toBe(ScanStatus.Ok);
    expect(h.textBytes).toBeGreaterThan(0);
  });
  it("reports bodies that are not JSON objects", () => {
    expect(scan("", h)).toBe(ScanStatus.NotJson);
    expect(scan("[1,2]", h)).toBe(ScanStatus.NotJson);
    expect(scan('{"prompt":"unterminated', h)).toBe(ScanStatus.NotJson);
    expect(scan('{"prompt" "x"}', h)).toBe(ScanStatus.NotJson);
    expect(scan('{"a":[[[[[[[[[[', h)).toBe(ScanStatus.NotJson);
    expect(scan("\x00\xff\xfe", h)).toBe(ScanStatus.NotJson);
  });
  it("reports objects without a prompt", () => {
    expect(scan('{"model":"m","input":"x"}', h)).toBe(ScanStatus.NoPrompt);
  });
  it("survives deep nesting without recursion", () => {
    let deep = '{"x":';
    for (let i = 0; i < 20000; i++) deep += "[";
    for (let i = 0; i < 20000; i++) deep += "]";
    deep += ',"prompt":"after the deep part"}';
    expect(scan(deep, h)).toBe(ScanStatus.Ok);
    expect(h.count).toBe(2);
  });
  it("handles a trailing backslash and odd escapes inside strings", () => {
    expect(scan('{"prompt":"abc\\', h)).toBe(ScanStatus.NotJson);
    expect(scan('{"prompt":"a\\qb\\u12"}', h)).toBe(ScanStatus.Ok);
  });
});

// Block sizes that are a multiple of 32 bytes take the one-pass path that tests
// and hashes whole blocks from the same loads: every way a quote or an escape
// can fall across its blocks must give the hashes of the decoded text fed whole.
const PIECES_JSON: string[] = ["a", "bc", "xyz words ", "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud83d\\ude00", "\\/", "0123456789abcdef0123456789abcdef", "\\t"];
const PIECES_TEXT: string[] = ["a", "bc", "xyz words ", "\n", "\"", "\\", "é", "😀", "/", "0123456789abcdef0123456789abcdef", "\t"];

let rng: u32 = 12345;
function nextRandom(n: u32): u32 {
  rng = rng * 1103515245 + 12345;
  return (rng >>> 8) % n;
}

function sameAsFed(json: string, text: string, blockBytes: i32, maxBlocks: i32): bool {
  const a = new BlockHasher(blockBytes, maxBlocks);
  const b = new BlockHasher(blockBytes, maxBlocks);
  const body = String.UTF8.encode('{"model":"m","prompt":"' + json + '","n":1}');
  if (hashPrompt(changetype<usize>(body), body.byteLength, a) != ScanStatus.Ok) return false;
  const m = String.UTF8.encode("m");
  b.reset(xxh64(changetype<usize>(m), 1, 0x70726566697852));
  const t = String.UTF8.encode(text);
  b.feed(changetype<usize>(t), t.byteLength);
  return same(a, b);
}

describe("hashPrompt, one-pass whole blocks", () => {
  it("hashes random mixes of plain runs and escapes as the decoded text fed whole, for 32- and 64-byte blocks", () => {
    const sizes: i32[] = [32, 64, 96, 24];
    for (let round = 0; round < 600; round++) {
      let json = "", text = "";
      const pieces = nextRandom(40);
      for (let i: u32 = 0; i < pieces; i++) {
        // Mostly plain runs, so whole plain blocks occur between the escapes.
        const k = nextRandom(10) < 6 ? nextRandom(3) == 0 ? 9 : 2 : nextRandom(PIECES_JSON.length);
        json += PIECES_JSON[k];
        text += PIECES_TEXT[k];
      }
      const bb = sizes[round % sizes.length];
      expect(sameAsFed(json, text, bb, 64)).toBe(true);
      // A full hasher stops hashing but must still find the string's end.
      expect(sameAsFed(json, text, bb, 2)).toBe(true);
    }
  });
  it("ends at the closing quote wherever it falls in a block", () => {
    let json = "";
    for (let n = 0; n < 200; n++) {
      expect(sameAsFed(json, json, 32, 64)).toBe(true);
      expect(sameAsFed(json, json, 64, 64)).toBe(true);
      json += String.fromCharCode(0x61 + n % 26);
    }
  });
});

/** The one-pass messages walk (model first) must agree with the two-pass path (model last), status and hashes. */
function chatAgrees(messages: string): bool {
  const a = new BlockHasher(64, 64);
  const b = new BlockHasher(64, 64);
  const one = String.UTF8.encode('{"model":"m","messages":' + messages + ',"max_tokens":5}');
  const two = String.UTF8.encode('{"messages":' + messages + ',"max_tokens":5,"model":"m"}');
  const sa = hashPrompt(changetype<usize>(one), one.byteLength, a);
  const sb = hashPrompt(changetype<usize>(two), two.byteLength, b);
  return sa == sb && (sa != ScanStatus.Ok || same(a, b));
}

describe("hashPrompt, chat messages in one pass", () => {
  it("agrees with the two-pass path on every message shape", () => {
    const cases: string[] = [
      '[]',
      '[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hi"}]',
      '[{"content":"content before role","role":"user"}]',
      '[{"role":"user","content":[{"type":"text","text":"part one "},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"two"}]}]',
      '[{"role":"user","name":"bob","content":"with a name"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{\\"a\\":[1,\\"]\\"]}"}}]}]',
      '[{"role":"user"},{"content":"no role"},{}]',
      '["a bare string", 42, [1,2], {"role":"user","content":"after bare items"}]',
      '[{"role":"user","content":"first","content":"repeated content: the last counts"}]',
      '[{"role":"user","role":"system","content":"repeated role"}]',
      '[{"role":"user","content":"esc\\u00e9 \\"q\\" \\n\\t\\\\ \\ud83d\\ude00 and more text than one block of sixty-four bytes, surely"}]',
      '[{"role":"us\\u0065r","content":"escaped role"}]',
      '[{"role":"user","content":"unterminated}]',
      '[{"role":"user","content":"x"} {"role":"user","content":"missing comma"}]',
      '[{"role":"user","content":"x",}]',
      '[{"role" "user"}]',
      '[{"role":"user","content":"x"}',
      '[{"role":"user","content":"trailing"},]',
    ];
    for (let i = 0; i < cases.length; i++) {
      if (!chatAgrees(cases[i])) {
        log("disagrees: " + cases[i]);
        expect(false).toBe(true);
      }
    }
  });
  it("agrees on random conversations with escapes at any offset", () => {
    for (let round = 0; round < 300; round++) {
      let msgs = "[";
      const n = nextRandom(6);
      for (let i: u32 = 0; i < n; i++) {
        let text = "";
        const pieces = nextRandom(30);
        for (let k: u32 = 0; k < pieces; k++) text += PIECES_JSON[nextRandom(PIECES_JSON.length)];
        const role = nextRandom(3) == 0 ? "system" : "user";
        const shape = nextRandom(4);
        let msg: string;
        if (shape == 0) msg = '{"content":"' + text + '","role":"' + role + '"}';
        else if (shape == 1) msg = '{"role":"' + role + '","content":[{"type":"text","text":"' + text + '"}]}';
        else msg = '{"role":"' + role + '","content":"' + text + '"}';
        msgs += (i > 0 ? "," : "") + msg;
      }
      msgs += "]";
      expect(chatAgrees(msgs)).toBe(true);
    }
  });
});

describe("hashPrompt, long escaped strings", () => {
  it("decodes text longer than its 16 KiB buffer exactly, in one pass and in two", () => {
    let json = "", text = "";
    while (text.length < 40000) {
      const k = nextRandom(PIECES_JSON.length);
      json += PIECES_JSON[k] + "line of text\\n";
      text += PIECES_TEXT[k] + "line of text\n";
    }
    expect(sameAsFed(json, text, 64, 1024)).toBe(true);
    // The two-pass path (prompt before model) decodes the same way.
    const a = new BlockHasher(64, 1024);
    const b = new BlockHasher(64, 1024);
    const one = String.UTF8.encode('{"model":"m","prompt":"' + json + '"}');
    const two = String.UTF8.encode('{"prompt":"' + json + '","model":"m"}');
    expect(hashPrompt(changetype<usize>(one), one.byteLength, a)).toBe(ScanStatus.Ok);
    expect(hashPrompt(changetype<usize>(two), two.byteLength, b)).toBe(ScanStatus.Ok);
    expect(same(a, b)).toBe(true);
    expect(a.count).toBeGreaterThan(<i32>(16384 / 64)); // more than one buffer of decoded text
  });
});
