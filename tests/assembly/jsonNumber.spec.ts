// Numbers as the configuration's JSON parser reads them: the values parseFloat gives,
// exactly where configurations live, and 0 or Infinity where f64 ends.
import { JsonKind, jsonError, parseJson } from "../../assembly/config/jsonDocument";
import { CharCode } from "../../assembly/charCode";
import { configError, readInt, readNum, setConfigError } from "../../assembly/config/configReaders";

function doc(text: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(text));
}

/** The value of `text` as a whole JSON document (NaN when it is not one). */
function num(text: string): f64 {
  const v = parseJson(doc(text));
  if (v === null || v.kind != JsonKind.Number) return NaN;
  return v.num;
}

let seed: u32 = 12345;

/** A pseudo-random integer in [0, n). */
function random(n: i32): i32 {
  seed = seed * 1103515245 + 12345;
  return <i32>((seed >>> 8) % <u32>n);
}

/** Distance in units of the last place between two finite values of one sign. */
function ulps(a: f64, b: f64): i64 {
  const d = reinterpret<i64>(a) - reinterpret<i64>(b);
  return d < 0 ? -d : d;
}

describe("JSON numbers", () => {
  it("reads integers, fractions and exponents", () => {
    expect(num("0")).toBe(0);
    expect(num("7")).toBe(7);
    expect(num("-42")).toBe(-42);
    expect(num("4294967295")).toBe(4294967295);
    expect(num("9007199254740993")).toBe(9007199254740992);
    expect(num("0.1")).toBe(0.1);
    expect(num("0.30000000000000004")).toBe(0.30000000000000004);
    expect(num("2.5e-3")).toBe(0.0025);
    expect(num("1E+2")).toBe(100);
    expect(num("1e-9")).toBe(1e-9);
    expect(num("-1.5e3")).toBe(-1500);
  });
  it("keeps the sign of zero", () => {
    expect(1 / num("-0")).toBe(-Infinity);
    expect(1 / num("-0.0e-5")).toBe(-Infinity);
    expect(1 / num("0e999999999")).toBe(Infinity);
  });
  it("reaches both ends of f64, past them Infinity and 0", () => {
    expect(num("1e308")).toBe(1e308);
    expect(num("1.7976931348623157e308")).toBe(1.7976931348623157e308);
    expect(num("17976931348623157e292")).toBe(1.7976931348623157e308);
    expect(num("1e309")).toBe(Infinity);
    expect(num("-18e307")).toBe(-Infinity);
    expect(num("2.2250738585072014e-308")).toBe(2.2250738585072014e-308);
    expect(num("1e-320")).toBe(1e-320);
    expect(num("4.9e-324")).toBe(5e-324);
    expect(num("2.4e-324")).toBe(0);
    expect(num("1e-400")).toBe(0);
    expect(num("1234567890123456789e-330")).toBe(1.234567890123456789e-312);
  });
  it("takes exponents of any length without overflowing", () => {
    expect(num("1e999999999999")).toBe(Infinity);
    expect(num("1e-999999999999")).toBe(0);
    expect(num("1e0000000000000000000000000000001")).toBe(10);
    expect(num("0.00000000000000000000000000000000000001e38")).toBe(1);
  });
  it("reads mantissas of 20 digits and more to within an ulp", () => {
    expect(num("123456789012345678901234567890")).toBe(1.2345678901234568e29);
    expect(num("0.1234567890123456789012345")).toBe(0.12345678901234568);
    expect(num("-98765432109876543210.5e-3")).toBe(-98765432109876540);
    expect(num("12345678901234567890123e-40")).toBe(1.2345678901234568e-18);
    expect(ulps(num("0.000000000000000000000000000001"), 1e-30)).toBeLessThanOrEqual(1);
    expect(ulps(num("484806880286.06288608844e+256"), 4.848068802860629e267)).toBeLessThanOrEqual(2);
  });
  it("gives parseFloat's value for up to 15 digits at exponents up to 22", () => {
    let differ = 0;
    for (let t = 0; t < 5000; t++) {
      const digits = 1 + random(15);
      let text = String.fromCharCode(CharCode._0 + 1 + random(9));
      for (let k = 1; k < digits; k++) text += String.fromCharCode(CharCode._0 + random(10));
      // The point anywhere among the digits, the exponent making up for it: 10^-22 to 10^22 times the integer.
      const point = random(digits);
      if (point > 0) text = text.substring(0, point) + "." + text.substring(point);
      text += "e" + (random(45) - 22 + (point > 0 ? digits - point : 0)).toString();
      if (num(text) != parseFloat(text)) differ++;
    }
    expect(differ).toBe(0);
  });
  it("still rejects what is not JSON's number grammar", () => {
    expect(parseJson(doc("069"))).toBeNull();
    expect(jsonError).toBe("bad number at byte 0");
    expect(parseJson(doc("-"))).toBeNull();
    expect(parseJson(doc("1."))).toBeNull();
    expect(parseJson(doc("1e+"))).toBeNull();
    expect(parseJson(doc(".5"))).toBeNull();
    expect(parseJson(doc("+1"))).toBeNull();
  });
});

describe("configuration readers on out-of-range numbers", () => {
  it("reject Infinity", () => {
    const o = parseJson(doc('{"a": 1e309, "b": -1e-400, "c": 0.25}'))!;
    setConfigError("");
    expect(readNum(o, "", "a", 0, 1e6, 5)).toBe(5);
    expect(configError).toBe("'a' must be a number from 0 to 1000000");
    setConfigError("");
    expect(readInt(o, "", "a", 0, 1e6, 5)).toBe(5);
    expect(configError).toBe("'a' must be a whole number from 0 to 1000000");
    setConfigError("");
    // -1e-400 is -0: in range, like any other zero.
    expect(1 / readNum(o, "", "b", -1, 1, 0.5)).toBe(-Infinity);
    expect(readNum(o, "", "c", 0, 1, 0.5)).toBe(0.25);
    expect(configError).toBe("");
  });
});
