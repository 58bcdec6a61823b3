// Seeded randomness for the routing simulation. Every random choice draws from a
// stream derived from (run seed, label), so adding a stream never shifts another
// and the same seed gives the same numbers on any machine.
import { mulberry32 } from '../../simulator/tokens.js';

/** FNV-1a over the labels' UTF-16 code units, mixed with the seed: a 32-bit stream seed. */
export function deriveSeed(seed: number, ...labels: Array<string | number>): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (const label of labels) {
    const s = `${label}\u0001`;
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  }
  // final avalanche so nearby labels give unrelated streams
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  static of(seed: number, ...labels: Array<string | number>): Rng { return new Rng(deriveSeed(seed, ...labels)); }
  /** Uniform in [0, 1). */
  float(): number { return this.next(); }
  /** Uniform integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  /** Exponential with the given mean, rounded to whole microseconds (keeps times exact-ish and portable). */
  exponentialUs(meanUs: number): number { return Math.max(1, Math.round(-Math.log(1 - this.next()) * meanUs)); }
}
