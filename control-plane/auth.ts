// Bearer-token check for writes. Both sides are hashed to equal-length
// digests first, so timingSafeEqual compares in constant time whatever the
// lengths (and the token's length does not leak either).
import { createHash, timingSafeEqual } from 'node:crypto';

export type AuthResult = 'ok' | 'missing' | 'wrong';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function makeTokenCheck(token: string): (authorization: string | undefined) => AuthResult {
  const expected = digest(token);
  return (authorization) => {
    if (!authorization) return 'missing';
    const m = /^Bearer[ \t]+(.+)$/i.exec(authorization.trim());
    if (!m) return 'missing';
    return timingSafeEqual(digest(m[1]), expected) ? 'ok' : 'wrong';
  };
}
