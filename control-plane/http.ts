// What every route of the control plane's API shares: JSON answers and errors, JSON request
// bodies within a size limit, and dispatch by path and method (405 naming the allowed methods,
// 404 for an unknown path). Each route lives in routes/, one file per path.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Json = Record<string, unknown>;

export interface Route {
  path: string;
  methods: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void | Promise<void>;
}

/** A JSON answer's text, as every route writes it. */
export const jsonText = (body: unknown): string => JSON.stringify(body, null, 2) + '\n';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = jsonText(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export const errorBody = (error: string, field?: string): Json => (field ? { error, field } : { error });

// The refusals dispatch and readBody answer, for a caller that answers without a socket too (routes/state.ts).
export const noSuchEndpoint = (pathname: string): Json => errorBody(`no such endpoint: ${pathname}`);
export const methodNotAllowed = (method: string, pathname: string, methods: readonly string[]): Json =>
  errorBody(`method ${method} not allowed on ${pathname}; use ${methods.join(' or ')}`);
/** The Allow header of a 405. */
export const allowHeader = (methods: readonly string[]): string => methods.join(', ');
export const bodyTooLarge = (maxBytes: number): Json => errorBody(`body larger than ${maxBytes} bytes`);

/** Why a request's Content-Type header refuses it for a body of `type` (a 415's body), or null when it is `type`. */
export function contentTypeRefusal(header: string | undefined, type: string): Json | null {
  const got = (header ?? '').split(';')[0]!.trim().toLowerCase();
  return got === type ? null : errorBody(`Content-Type must be ${type} (got ${got ? JSON.stringify(got) : 'none'})`);
}

/**
 * Reads a body of Content-Type `type` within `maxBytes`; answers the error
 * itself (415, 413) and returns undefined on failure.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number, type: string): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const refusal = contentTypeRefusal(req.headers['content-type'], type);
    if (refusal) {
      req.resume();
      sendJson(res, 415, refusal);
      return resolve(undefined);
    }
    const declared = Number(req.headers['content-length']);
    const tooLarge = () => {
      sendJson(res, 413, bodyTooLarge(maxBytes), { connection: 'close' });
      resolve(undefined);
    };
    if (Number.isFinite(declared) && declared > maxBytes) { req.resume(); return tooLarge(); }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > maxBytes) { failed = true; tooLarge(); req.resume(); return; }
      chunks.push(c);
    });
    req.on('error', () => { if (!failed) { failed = true; resolve(undefined); } });
    req.on('end', () => { if (!failed) resolve(Buffer.concat(chunks)); });
  });
}

/** Reads a JSON body within `maxBytes`; answers the error itself (415, 413, 400) and returns undefined on failure. */
export async function readJsonBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<{ value: unknown } | undefined> {
  const body = await readBody(req, res, maxBytes, 'application/json');
  if (!body) return undefined;
  try {
    return { value: JSON.parse(body.toString('utf8')) };
  } catch (e) {
    sendJson(res, 400, errorBody(`body is not valid JSON: ${(e as Error).message}`, '(body)'));
    return undefined;
  }
}

/**
 * A resource read with GET and replaced with PUT: GET answers `describe()`; PUT, for a caller
 * `mayWrite` admits (it answers 401/403 itself), reads a JSON body and hands it to `put`, which
 * answers a refusal itself and returns false, or returns true to answer `describe()`.
 */
export function getPutRoute(o: {
  path: string;
  describe(): unknown;
  mayWrite(req: IncomingMessage, res: ServerResponse): boolean;
  maxBodyBytes: number;
  put(value: unknown, res: ServerResponse): boolean | Promise<boolean>;
}): Route {
  return {
    path: o.path,
    methods: ['GET', 'PUT'],
    async handle(req, res) {
      if (req.method === 'GET') return sendJson(res, 200, o.describe());
      if (!o.mayWrite(req, res)) { req.resume(); return; }
      const body = await readJsonBody(req, res, o.maxBodyBytes);
      if (!body) return;
      if (await o.put(body.value, res)) sendJson(res, 200, o.describe());
    },
  };
}

/** One handler for all routes. */
export function dispatch(routes: readonly Route[]): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const byPath = new Map(routes.map((r) => [r.path, r]));
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    const method = req.method ?? 'GET';
    const route = byPath.get(url.pathname);
    if (!route) {
      req.resume();
      return sendJson(res, 404, noSuchEndpoint(url.pathname));
    }
    if (!route.methods.includes(method)) {
      req.resume();
      return sendJson(res, 405, methodNotAllowed(method, url.pathname, route.methods), { allow: allowHeader(route.methods) });
    }
    await route.handle(req, res, url);
  };
}
