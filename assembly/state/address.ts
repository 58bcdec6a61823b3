// `ip:port` checks shared by the configuration and the state decoder. The
// address goes into x-gateway-destination-endpoint, which an ORIGINAL_DST
// cluster dials as it is: only literal IPs and ports get through.
import { CharCode } from "../charCode";

function isDigit(c: i32): bool { return c >= CharCode._0 && c <= CharCode._9; }
function isHex(c: i32): bool { return isDigit(c) || (c >= CharCode.a && c <= CharCode.f) || (c >= CharCode.A && c <= CharCode.F); }

/** Checks the bytes [p, p+len) as `a.b.c.d:port` or `[v6]:port`. */
export function isValidAddressBytes(p: usize, len: i32): bool {
  if (len < 3 || len > 63) return false;
  // The port: digits after the last ':'.
  let colon = len - 1;
  while (colon >= 0 && load<u8>(p + <usize>colon) != CharCode.COLON) colon--;
  if (colon <= 0 || colon == len - 1 || len - 1 - colon > 5) return false;
  let port = 0;
  for (let i = colon + 1; i < len; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    if (!isDigit(c)) return false;
    port = port * 10 + (c - CharCode._0);
  }
  if (port < 1 || port > 65535) return false;
  if (load<u8>(p) == CharCode.OPEN_BRACKET) {
    if (load<u8>(p + <usize>(colon - 1)) != CharCode.CLOSE_BRACKET || colon < 4) return false;
    let colons = 0;
    for (let i = 1; i < colon - 1; i++) {
      const c = <i32>load<u8>(p + <usize>i);
      if (c == CharCode.COLON) colons++;
      else if (!isHex(c) && c != CharCode.DOT) return false;
    }
    return colons >= 2;
  }
  let octets = 0, digits = 0, value = 0;
  for (let i = 0; i < colon; i++) {
    const c = <i32>load<u8>(p + <usize>i);
    if (isDigit(c)) {
      if (++digits > 3) return false;
      value = value * 10 + (c - CharCode._0);
      if (value > 255) return false;
    } else if (c == CharCode.DOT) {
      if (digits == 0) return false;
      octets++;
      digits = 0;
      value = 0;
    } else return false;
  }
  return digits > 0 && octets == 3;
}

export function isValidAddress(s: string): bool {
  const b = String.UTF8.encode(s);
  return isValidAddressBytes(changetype<usize>(b), b.byteLength);
}
