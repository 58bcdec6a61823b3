// Numbers as text for decision records and configuration errors: rounded to
// three decimals, as JSON writes them. Not f64.toString(): its
// shortest-round-trip printer and tables cost about 3 KB of the module, and
// nothing printed here needs more than three decimals.

/** Past this magnitude (never reached: loads, scores and bounds are far below) a number prints as this bound. */
const LIMIT: f64 = 1e15;

/** `x` rounded to 3 decimals ("12", "-0.5", "0.125"); non-finite (never expected) as "0". */
export function decimal3(x: f64): string {
  if (!isFinite(x)) return "0";
  let k = <i64>Math.round((x > LIMIT ? LIMIT : x < -LIMIT ? -LIMIT : x) * 1000);
  const negative = k < 0;
  if (negative) k = -k;
  let s = (k / 1000).toString();
  let frac = <i32>(k % 1000);
  if (frac != 0) {
    let width = 3;
    while (frac % 10 == 0) {
      frac /= 10;
      width--;
    }
    const digits = frac.toString();
    s += (width - digits.length == 2 ? ".00" : width - digits.length == 1 ? ".0" : ".") + digits;
  }
  return negative ? "-" + s : s;
}
