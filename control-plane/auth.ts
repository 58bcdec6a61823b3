// Who may write. The bearer-token check: both sides are hashed to equal-length
// digests first, so timingSafeEqual compares in constant time whatever the
// lengths (and the token's length does not leak either).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorBody, sendJson } from './http.js';
import type { Logger } from './log.js';

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

/**
 * Who may write: with a token, callers presenting it (401 otherwise, logged without the
 * token); without one, everybody when unauthenticated writes are allowed (config.ts admits
 * that on a loopback host only), else nobody (403).
 */
export function makeWriteGuard(o: { token: string | null; allowUnauthenticatedWrites: boolean; log: Logger }): (req: IncomingMessage, res: ServerResponse) => boolean {
  const checkToken = o.token ? makeTokenCheck(o.token) : null;
  return (req, res) => {
    if (!checkToken) {
      if (o.allowUnauthenticatedWrites) return true;
      sendJson(res, 403, errorBody('writes are disabled: no API token is configured (set PREFIX_ROUTER_API_TOKEN or --token-file; on a loopback host, --allow-unauthenticated-writes)'));
      return false;
    }
    const result = checkToken(req.headers.authorization);
    if (result === 'ok') return true;
    o.log.warn('write refused', { reason: result === 'missing' ? 'no bearer token' : 'wrong token', remote: req.socket.remoteAddress });
    sendJson(res, 401, errorBody(result === 'missing' ? 'missing bearer token (Authorization: Bearer <token>)' : 'invalid token'), { 'www-authenticate': 'Bearer' });
    return false;
  };
}
