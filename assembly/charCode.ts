// ASCII character codes by name, as AssemblyScript's standard library names
// them (util/string's CharCode), with the JSON and HTTP punctuation the
// filter reads. A const enum: every use compiles to the number.

// @ts-ignore: decorator
@inline
export const enum CharCode {
  BACKSPACE = 0x08,
  TAB = 0x09,
  LINE_FEED = 0x0A,
  FORM_FEED = 0x0C,
  CARRIAGE_RETURN = 0x0D,
  SPACE = 0x20,
  QUOTE = 0x22,
  PLUS = 0x2B,
  COMMA = 0x2C,
  MINUS = 0x2D,
  DOT = 0x2E,
  SLASH = 0x2F,
  _0 = 0x30,
  _9 = 0x39,
  COLON = 0x3A,
  QUESTION = 0x3F,
  A = 0x41,
  E = 0x45,
  F = 0x46,
  Z = 0x5A,
  OPEN_BRACKET = 0x5B,
  BACKSLASH = 0x5C,
  CLOSE_BRACKET = 0x5D,
  a = 0x61,
  b = 0x62,
  e = 0x65,
  f = 0x66,
  n = 0x6E,
  r = 0x72,
  t = 0x74,
  u = 0x75,
  OPEN_BRACE = 0x7B,
  CLOSE_BRACE = 0x7D,
}
