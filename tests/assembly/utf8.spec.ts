import { isWellFormedUtf8 } from "../../assembly/utf8";

function wellFormed(bytes: u8[]): bool {
  const b = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) b[i] = bytes[i];
  return isWellFormedUtf8(b.dataStart, bytes.length);
}

// The verdicts of a strict decoder (TextDecoder('utf-8', { fatal: true })), which control-plane/loraSection.ts uses.
describe("isWellFormedUtf8", () => {
  it("takes ASCII and every well-formed 2-, 3- and 4-byte form, boundaries included", () => {
    expect(wellFormed([])).toBe(true);
    expect(wellFormed([0x41, 0x7f])).toBe(true);
    expect(wellFormed([0xc2, 0x80])).toBe(true);
    expect(wellFormed([0xdf, 0xbf])).toBe(true);
    expect(wellFormed([0xe0, 0xa0, 0x80])).toBe(true);
    expect(wellFormed([0xed, 0x9f, 0xbf])).toBe(true);
    expect(wellFormed([0xee, 0x80, 0x80])).toBe(true);
    expect(wellFormed([0xef, 0xbb, 0xbf])).toBe(true);
    expect(wellFormed([0xf0, 0x90, 0x80, 0x80])).toBe(true);
    expect(wellFormed([0xf4, 0x8f, 0xbf, 0xbf])).toBe(true);
    expect(wellFormed([0x61, 0xe4, 0xb8, 0xad, 0x62])).toBe(true);
  });
  it("refuses stray continuations, overlong forms, surrogates, code points past U+10FFFF and cut sequences", () => {
    expect(wellFormed([0x80])).toBe(false);
    expect(wellFormed([0xbf])).toBe(false);
    expect(wellFormed([0xc0, 0x80])).toBe(false);
    expect(wellFormed([0xc1, 0xbf])).toBe(false);
    expect(wellFormed([0xe0, 0x9f, 0xbf])).toBe(false);
    expect(wellFormed([0xf0, 0x8f, 0xbf, 0xbf])).toBe(false);
    expect(wellFormed([0xed, 0xa0, 0x80])).toBe(false);
    expect(wellFormed([0xf4, 0x90, 0x80, 0x80])).toBe(false);
    expect(wellFormed([0xf5, 0x80, 0x80, 0x80])).toBe(false);
    expect(wellFormed([0xff])).toBe(false);
    expect(wellFormed([0xc2])).toBe(false);
    expect(wellFormed([0xc2, 0x41])).toBe(false);
    expect(wellFormed([0xe1, 0x80])).toBe(false);
    expect(wellFormed([0xf0, 0x9f, 0x98])).toBe(false);
  });
});
