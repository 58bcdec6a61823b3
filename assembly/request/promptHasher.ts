// Extracts an OpenAI-style request's prompt from its JSON body and feeds it,
// decoded, into the block hasher, seeded with the model name. Completions:
// `prompt` as a string, an array of strings, or token arrays. Chat:
// `messages`, each one's role then content (a string, or an array of parts)
// in order, whatever the key order inside the message. Nothing allocates.
import { BlockHasher, checkpointIndex, isCheckpoint } from "../prefix/blockHasher";
import { chainBlock, digest64, laneDigest, xxh64, xxh64LaneSeed, xxh64Round } from "../prefix/hash";
import { BACKSLASH, ElementCursor, HIGHS, MemberCursor, QUOTE, quoteOrBackslashBits, skipPlain, skipValue, skipWs, stringEnd } from "./jsonScanner";
import { CharCode } from "../charCode";

export const enum ScanStatus {
  /** The prompt was hashed (it may still be empty). */
  Ok = 0,
  /** The body is not a JSON object, or is malformed. */
  NotJson = 1,
  /** A JSON object without `prompt` or `messages`. */
  NoPrompt = 2,
}

// Separators fed between pieces so that ["ab","c"] and ["a","bc"] differ.
// @ts-ignore: decorator
@inline const PIECE_END: u8 = 0x1e;
// @ts-ignore: decorator
@inline const ROLE_END: u8 = 0x1f;
/** Seed when a request names no model. */
// @ts-ignore: decorator
@inline const NO_MODEL_SEED: u64 = 0x70726566697852;

/**
 * The output tokens the last hashPrompt's request asked for at most
 * (`max_tokens`, or `max_completion_tokens`, the newer name for it; the last
 * one in the body counts), or -1 when it names neither as a whole number.
 */
export let maxTokensAsked: i32 = -1;
/** Larger asks are read as this: no model outputs more in one response. */
const MAX_TOKENS_CAP: i32 = 1 << 24;

const top = new MemberCursor();
const message = new MemberCursor();
const part = new MemberCursor();
const items = new ElementCursor();
const parts = new ElementCursor();
const streamedItems = new ElementCursor();
const streamedMessage = new MemberCursor();

/** What the hasher holds while hashPrompt walks the body. */
// @ts-ignore: decorator
@inline const HOLDS_NOTHING: i32 = 0;
// @ts-ignore: decorator
@inline const HOLDS_PROMPT: i32 = 1;
// @ts-ignore: decorator
@inline const HOLDS_MESSAGES: i32 = 2;


/**
 * Hashes the prompt of the JSON body at [ptr, ptr+len). `cut`: the body goes
 * on past len (it is still arriving), so a string prompt or a messages array
 * (after the model, as clients send them) that runs into the end is hashed as
 * far as it goes, and anything after a complete one may be missing.
 */
export function hashPrompt(ptr: usize, len: usize, hasher: BlockHasher, cut: bool = false): ScanStatus {
  const start = <isize>ptr;
  const end = start + <isize>len;
  maxTokensAsked = -1;
  const p = skipWs(start, end);
  if (p >= end || load<u8>(p) != CharCode.OPEN_BRACE) return ScanStatus.NotJson;
  let modelStart: isize = -1, modelEnd: isize = -1;
  let promptStart: isize = -1, promptEnd: isize = -1;
  let promptPlain = false;
  let messagesStart: isize = -1, messagesEnd: isize = -1;
  // A string prompt or a messages array after the model (as clients send
  // them) is hashed in the same pass that finds its end. `holds` says which
  // one the hasher holds now, and `heldSeed` the seed it was hashed with; the
  // two-pass path below re-hashes whenever that is not the final answer.
  let seed = NO_MODEL_SEED;
  let holds = HOLDS_NOTHING;
  let heldSeed: u64 = 0;
  top.begin(p, end);
  while (top.nextKey()) {
    if (modelStart >= 0 && top.keyIs("prompt") && load<u8>(top.valueStart) == QUOTE) {
      hasher.reset(seed);
      promptStart = top.valueStart;
      holds = HOLDS_NOTHING;
      if (!top.consumedTo(hashStringToEnd(promptStart, end, hasher))) {
        if (cut) return ScanStatus.Ok; // the prompt as far as it has come
        break;
      }
      promptEnd = top.valueEnd;
      holds = HOLDS_PROMPT;
      heldSeed = seed;
      continue;
    }
    if (modelStart >= 0 && top.keyIs("messages") && load<u8>(top.valueStart) == CharCode.OPEN_BRACKET) {
      hasher.reset(seed);
      holds = HOLDS_NOTHING;
      const after = hashMessagesToEnd(top.valueStart, end, hasher);
      if (after >= 0) {
        messagesStart = top.valueStart;
        top.consumedTo(after);
        messagesEnd = after;
        holds = HOLDS_MESSAGES;
        heldSeed = seed;
        continue;
      }
      if (cut) return ScanStatus.Ok; // the messages as far as they have come
      // Not a shape the one pass takes: the two-pass path below judges it.
    }
    if (!top.takeValue()) break;
    if (top.keyIs("model")) {
      modelStart = top.valueStart;
      modelEnd = top.valueEnd;
      seed = modelSeed(modelStart, modelEnd);
    } else if (top.keyIs("prompt")) {
      promptStart = top.valueStart; promptEnd = top.valueEnd; promptPlain = top.valuePlain;
      if (holds == HOLDS_PROMPT) holds = HOLDS_NOTHING;
    } else if (top.keyIs("messages")) {
      messagesStart = top.valueStart; messagesEnd = top.valueEnd;
      if (holds == HOLDS_MESSAGES) holds = HOLDS_NOTHING;
    } else if (top.keyIs("max_tokens") || top.keyIs("max_completion_tokens")) {
      maxTokensAsked = wholeNumber(top.valueStart, top.valueEnd);
    }
  }
  if (top.malformed && !cut) return ScanStatus.NotJson;
  if (messagesStart >= 0) {
    if (holds == HOLDS_MESSAGES && heldSeed == seed) return ScanStatus.Ok;
    hasher.reset(seed);
    feedMessages(messagesStart, messagesEnd, hasher);
    return ScanStatus.Ok;
  }
  if (promptStart >= 0) {
    if (holds == HOLDS_PROMPT && heldSeed == seed) return ScanStatus.Ok;
    hasher.reset(seed);
    feedPrompt(promptStart, promptEnd, promptPlain, hasher);
    return ScanStatus.Ok;
  }
  return ScanStatus.NoPrompt;
}

/** The JSON number at [s, e) when it is written as plain digits (capped at MAX_TOKENS_CAP), else -1. */
function wholeNumber(s: isize, e: isize): i32 {
  if (s >= e) return -1;
  let v: i32 = 0;
  for (let q = s; q < e; q++) {
    const d = <i32>load<u8>(q) - CharCode._0;
    if (d < 0 || d > 9) return -1;
    if (v < MAX_TOKENS_CAP) v = v * 10 + d;
  }
  return v < MAX_TOKENS_CAP ? v : MAX_TOKENS_CAP;
}

/** The chain's seed: the model's bytes as written (quotes excluded for strings). */
function modelSeed(modelStart: isize, modelEnd: isize): u64 {
  const quoted = load<u8>(modelStart) == QUOTE;
  const s = quoted ? modelStart + 1 : modelStart;
  const e = quoted ? modelEnd - 1 : modelEnd;
  return xxh64(<usize>s, <usize>(e - s), NO_MODEL_SEED);
}

function feedPrompt(s: isize, e: isize, plain: bool, hasher: BlockHasher): void {
  const c = load<u8>(s);
  if (c == QUOTE) {
    feedString(s, e, plain, hasher);
    return;
  }
  if (c != CharCode.OPEN_BRACKET) {
    feedRaw(s, e, hasher);
    return;
  }
  items.begin(s, e);
  while (!hasher.full && items.next()) {
    const v = items.valueStart;
    if (load<u8>(v) == QUOTE) feedString(v, items.valueEnd, items.valuePlain, hasher);
    else feedRaw(v, items.valueEnd, hasher); // token arrays: their digits are as good a key
    hasher.feedByte(PIECE_END);
  }
}

function feedMessages(s: isize, e: isize, hasher: BlockHasher): void {
  if (load<u8>(s) != CharCode.OPEN_BRACKET) {
    feedRaw(s, e, hasher);
    return;
  }
  items.begin(s, e);
  while (!hasher.full && items.next()) {
    const v = items.valueStart;
    if (load<u8>(v) != CharCode.OPEN_BRACE) {
      feedRaw(v, items.valueEnd, hasher);
      hasher.feedByte(PIECE_END);
      continue;
    }
    let roleS: isize = -1, roleE: isize = -1, contentS: isize = -1, contentE: isize = -1;
    let roleP = false, contentP = false;
    message.begin(v, items.valueEnd);
    while (message.next()) {
      if (message.keyIs("role")) { roleS = message.valueStart; roleE = message.valueEnd; roleP = message.valuePlain; }
      else if (message.keyIs("content")) { contentS = message.valueStart; contentE = message.valueEnd; contentP = message.valuePlain; }
    }
    if (roleS >= 0) feedValue(roleS, roleE, roleP, hasher);
    hasher.feedByte(ROLE_END);
    if (contentS >= 0) feedContent(contentS, contentE, contentP, hasher);
    hasher.feedByte(PIECE_END);
  }
}

/**
 * `s` at a messages array's opening bracket: hashes it as feedMessages does
 * while finding its end, so a message's string content (after its role, as
 * clients write it) is read once. Returns the position after the array, or
 * -1 when it cannot take the array in one pass (malformed, or a message
 * repeating role or content, where the last one counts): the caller then
 * leaves it to the two-pass path, which also judges whether it is JSON.
 */
function hashMessagesToEnd(s: isize, end: isize, hasher: BlockHasher): isize {
  const it = streamedItems;
  it.begin(s, end);
  while (it.nextStart()) {
    const v = it.valueStart;
    if (v >= end) return -1;
    let after: isize;
    if (load<u8>(v) == CharCode.OPEN_BRACE) after = hashMessageToEnd(v, end, hasher);
    else {
      after = skipValue(v, end);
      if (after < 0) return -1;
      feedRaw(v, after, hasher);
      hasher.feedByte(PIECE_END);
    }
    if (!it.consumedTo(after)) return -1;
  }
  return it.malformed ? -1 : it.after;
}

/** One message of hashMessagesToEnd: `v` at its opening brace. */
function hashMessageToEnd(v: isize, end: isize, hasher: BlockHasher): isize {
  const m = streamedMessage;
  let roleS: isize = -1, roleE: isize = -1, contentS: isize = -1, contentE: isize = -1;
  let roleP = false, contentP = false, streamed = false;
  m.begin(v, end);
  while (m.nextKey()) {
    if (m.keyIs("content")) {
      if (streamed || contentS >= 0) return -1;
      if (roleS >= 0 && load<u8>(m.valueStart) == QUOTE) {
        feedValue(roleS, roleE, roleP, hasher);
        hasher.feedByte(ROLE_END);
        if (!m.consumedTo(hashStringToEnd(m.valueStart, end, hasher))) return -1;
        streamed = true;
        continue;
      }
      if (!m.takeValue()) return -1;
      contentS = m.valueStart; contentE = m.valueEnd; contentP = m.valuePlain;
      continue;
    }
    if (!m.takeValue()) return -1;
    if (m.keyIs("role")) {
      if (roleS >= 0) return -1;
      roleS = m.valueStart; roleE = m.valueEnd; roleP = m.valuePlain;
    }
  }
  if (m.malformed) return -1;
  if (!streamed) {
    // Content before role, or not a string: in the order feedMessages feeds them.
    if (roleS >= 0) feedValue(roleS, roleE, roleP, hasher);
    hasher.feedByte(ROLE_END);
    if (contentS >= 0) feedContent(contentS, contentE, contentP, hasher);
  }
  hasher.feedByte(PIECE_END);
  return m.after;
}

function feedContent(s: isize, e: isize, plain: bool, hasher: BlockHasher): void {
  if (load<u8>(s) != CharCode.OPEN_BRACKET) {
    feedValue(s, e, plain, hasher);
    return;
  }
  parts.begin(s, e);
  while (!hasher.full && parts.next()) {
    const v = parts.valueStart;
    if (load<u8>(v) != CharCode.OPEN_BRACE) {
      feedValue(v, parts.valueEnd, parts.valuePlain, hasher);
      continue;
    }
    // A text part feeds its text; any other part (image, audio, file) its JSON as written.
    let textS: isize = -1, textE: isize = -1;
    let textP = false;
    part.begin(v, parts.valueEnd);
    while (part.next()) {
      if (part.keyIs("text")) { textS = part.valueStart; textE = part.valueEnd; textP = part.valuePlain; }
    }
    if (textS >= 0) feedValue(textS, textE, textP, hasher);
    else feedRaw(v, parts.valueEnd, hasher);
  }
}

@inline function feedValue(s: isize, e: isize, plain: bool, hasher: BlockHasher): void {
  if (load<u8>(s) == QUOTE) feedString(s, e, plain, hasher);
  else feedRaw(s, e, hasher);
}

@inline function feedRaw(s: isize, e: isize, hasher: BlockHasher): void {
  hasher.feed(<usize>s, <i32>(e - s));
}

/**
 * Feeds a JSON string's decoded UTF-8 text; [s, e) spans it with its quotes.
 * `plain`: the scan that found its end saw no escape, so its bytes go in as they are.
 */
export function feedString(s: isize, e: isize, plain: bool, hasher: BlockHasher): void {
  let p = s + 1;
  const end = e - 1; // the closing quote
  if (plain) {
    hasher.feed(<usize>p, <i32>(end - p)); // stops by itself once the hasher is full
    return;
  }
  // The scan that found `e` saw the closing quote at `end`: decoding stops there.
  decodeAndHash(p, e, hasher, false);
}

/**
 * `s` at a string's opening quote, anywhere before `end` (the body's end):
 * hashes its decoded text while looking for its closing quote, in one pass.
 * Returns the position after the closing quote, or -1 when there is none.
 * Ends the string exactly where skipString would.
 */
function hashStringToEnd(s: isize, end: isize, hasher: BlockHasher): isize {
  let p = s + 1;
  const bb = <isize>hasher.blockBytes;
  while (true) {
    if (hasher.pending == 0) p = hashPlainBlocks(p, end, hasher);
    // Full (a long prompt past its hashed blocks): only the string's end is wanted.
    if (hasher.full) return stringEnd(p, end);
    // To the next quote or backslash, but no further than the current block's
    // end: the blocks after it go back to hashPlainBlocks.
    const pending = <isize>hasher.pending;
    const limit = end - p < bb - pending ? end : p + bb - pending;
    let q = skipPlain(p, limit);
    while (q < limit) {
      const c = load<u8>(q);
      if (c == QUOTE || c == BACKSLASH) break;
      q++;
    }
    if (q > p) hasher.feed(<usize>p, <i32>(q - p));
    if (q >= end) return -1;
    if (q == limit) {
      p = q;
      continue;
    }
    if (load<u8>(q) == QUOTE) return q + 1;
    // An escape: strings that have one mostly have many (line breaks), so
    // the rest is decoded and hashed in one go.
    return decodeAndHash(q, end, hasher, true);
  }
  return -1;
}

/** Decoded text waits here to be hashed; the slack takes an 8-byte store or a 4-byte escape past the end. */
// @ts-ignore: decorator
@inline const DECODE_CAP: usize = 16384;
const DECODE_BUF: usize = memory.data(<i32>DECODE_CAP + 16);

/**
 * `p` inside a string (at an escape, say): decodes the rest of it into
 * DECODE_BUF, eight plain bytes at a time, and feeds the hasher a buffer at
 * a time, so whole blocks are hashed where they lie. (Fed piece by piece
 * between escapes, a prompt with a line break every line cost five times
 * the plain one.) Returns the position after the closing quote, or -1 when
 * there is none before `end`; with `needEnd` false it returns 0 as soon as
 * the hasher is full, without looking further.
 */
function decodeAndHash(p: isize, end: isize, hasher: BlockHasher, needEnd: bool): isize {
  const buf = DECODE_BUF;
  const cap = buf + DECODE_CAP;
  let d = buf;
  while (true) {
    if (d >= cap) {
      hasher.feed(buf, <i32>(d - buf));
      d = buf;
      if (hasher.full) return needEnd ? stringEnd(p, end) : 0;
    }
    if (p + 8 <= end) {
      // Eight bytes copied at once; the lowest flagged byte is the first quote or backslash.
      const w = load<u64>(p);
      const special = quoteOrBackslashBits(w) & HIGHS;
      store<u64>(d, w);
      if (special == 0) {
        d += 8;
        p += 8;
        continue;
      }
      const k = <isize>(ctz(special) >> 3);
      d += <usize>k;
      p += k;
    } else {
      while (p < end) {
        const c = load<u8>(p);
        if (c == QUOTE || c == BACKSLASH) break;
        store<u8>(d, c);
        d++;
        p++;
      }
      if (p >= end) return -1;
    }
    if (load<u8>(p) == QUOTE) {
      hasher.feed(buf, <i32>(d - buf));
      return p + 1;
    }
    if (p + 1 >= end) return -1;
    p = decodeEscape(p, end, d);
    d += decodedBytes;
  }
  return -1;
}

/**
 * `p` in a string, the hasher at a block boundary: hashes whole blocks while
 * none holds a quote or a backslash, testing and hashing each block from the
 * same loads (one pass over the text, not a scan and then a hash). Returns
 * where it stopped: at a block that has one, with less than a block before
 * `end`, or with the hasher full. Block sizes that are not a multiple of 32
 * bytes (xxHash64's stripe) are left to the general path.
 */
function hashPlainBlocks(p: isize, end: isize, hasher: BlockHasher): isize {
  const bb = <isize>hasher.blockBytes;
  if ((bb & 31) != 0) return p;
  // The chain stays in locals until the loop ends (see BlockHasher.lastHash).
  const hashes = hasher.hashes;
  const max = hasher.maxBlocks;
  let n = hasher.count;
  let last = hasher.lastHash;
  if (bb == 64) {
    // The default block: its eight words in straight-line code, tested before
    // any lane takes them (no inner loop: 8 KB of blocks 1.91 -> 1.70 us).
    while (n < max && end - p >= 64) {
      const a0 = load<u64>(p), b0 = load<u64>(p, 8), c0 = load<u64>(p, 16), d0 = load<u64>(p, 24);
      const a1 = load<u64>(p, 32), b1 = load<u64>(p, 40), c1 = load<u64>(p, 48), d1 = load<u64>(p, 56);
      const special = quoteOrBackslashBits(a0) | quoteOrBackslashBits(b0) | quoteOrBackslashBits(c0) | quoteOrBackslashBits(d0) |
        quoteOrBackslashBits(a1) | quoteOrBackslashBits(b1) | quoteOrBackslashBits(c1) | quoteOrBackslashBits(d1);
      if ((special & HIGHS) != 0) break;
      last = chainBlock(last, digest64(a0, b0, c0, d0, a1, b1, c1, d1));
      if (isCheckpoint(++n)) unchecked(hashes[checkpointIndex(n)] = last);
      p += 64;
    }
    hasher.commit(n, last);
    return p;
  }
  while (n < max && end - p >= bb) {
    // blockDigest of the block, from the words just tested; chained as pushBlock does.
    let v1 = xxh64LaneSeed(0, 0);
    let v2 = xxh64LaneSeed(0, 1);
    let v3 = xxh64LaneSeed(0, 2);
    let v4 = xxh64LaneSeed(0, 3);
    let special: u64 = 0;
    const stop = p + bb;
    let q = p;
    do {
      const a = load<u64>(q);
      const b = load<u64>(q, 8);
      const c = load<u64>(q, 16);
      const d = load<u64>(q, 24);
      special |= quoteOrBackslashBits(a) | quoteOrBackslashBits(b) | quoteOrBackslashBits(c) | quoteOrBackslashBits(d);
      v1 = xxh64Round(v1, a);
      v2 = xxh64Round(v2, b);
      v3 = xxh64Round(v3, c);
      v4 = xxh64Round(v4, d);
      q += 32;
    } while (q < stop);
    if ((special & HIGHS) != 0) break;
    last = chainBlock(last, laneDigest(v1, v2, v3, v4));
    if (isCheckpoint(++n)) unchecked(hashes[checkpointIndex(n)] = last);
    p = stop;
  }
  hasher.commit(n, last);
  return p;
}

/** Bytes the last decodeEscape wrote. */
let decodedBytes: usize = 0;

/**
 * `q` at a backslash with at least one byte after it before `end`: writes the
 * UTF-8 of what the escape stands for at `out` (1 to 4 bytes, decodedBytes);
 * returns the position after it.
 */
function decodeEscape(q: isize, end: isize, out: usize): isize {
  const x = load<u8>(q + 1);
  let p = q + 2;
  decodedBytes = 1;
  if (x == CharCode.n) store<u8>(out, CharCode.LINE_FEED);
  else if (x == CharCode.t) store<u8>(out, CharCode.TAB);
  else if (x == CharCode.r) store<u8>(out, CharCode.CARRIAGE_RETURN);
  else if (x == CharCode.b) store<u8>(out, CharCode.BACKSPACE);
  else if (x == CharCode.f) store<u8>(out, CharCode.FORM_FEED);
  else if (x == CharCode.u) {
    let cp = hex4(p, end);
    if (cp < 0) {
      store<u8>(out, x);
      return p;
    }
    p += 4;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      // A high surrogate: pair it with the low one that should follow.
      let lo: i32 = -1;
      if (p + 6 <= end && load<u8>(p) == BACKSLASH && load<u8>(p + 1) == CharCode.u) lo = hex4(p + 2, end);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      } else cp = 0xfffd;
    } else if (cp >= 0xdc00 && cp <= 0xdfff) cp = 0xfffd;
    decodedBytes = encodeCodePoint(cp, out);
  } else store<u8>(out, x); // \" \\ \/ and unknown escapes stand for themselves
  return p;
}

function hex4(p: isize, end: isize): i32 {
  if (p + 4 > end) return -1;
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    let d: i32;
    if (c >= CharCode._0 && c <= CharCode._9) d = c - CharCode._0;
    else if (c >= CharCode.a && c <= CharCode.f) d = c - 0x57;
    else if (c >= CharCode.A && c <= CharCode.F) d = c - 0x37;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

/** Writes code point `cp` as UTF-8 at `out`; returns its length. */
function encodeCodePoint(cp: i32, out: usize): usize {
  if (cp < 0x80) {
    store<u8>(out, <u8>cp);
    return 1;
  }
  if (cp < 0x800) {
    store<u8>(out, <u8>(0xc0 | (cp >> 6)));
    store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 1);
    return 2;
  }
  if (cp < 0x10000) {
    store<u8>(out, <u8>(0xe0 | (cp >> 12)));
    store<u8>(out, <u8>(0x80 | ((cp >> 6) & 0x3f)), 1);
    store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 2);
    return 3;
  }
  store<u8>(out, <u8>(0xf0 | (cp >> 18)));
  store<u8>(out, <u8>(0x80 | ((cp >> 12) & 0x3f)), 1);
  store<u8>(out, <u8>(0x80 | ((cp >> 6) & 0x3f)), 2);
  store<u8>(out, <u8>(0x80 | (cp & 0x3f)), 3);
  return 4;
}
