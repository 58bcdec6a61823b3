// The OpenAI-compatible HTTP face of one replica: /v1/completions, /v1/chat/completions
// (streaming SSE or not), /v1/models, /health, /metrics, and what routers read from an engine
// (engineInfo.ts: /load, /tokenize, /get_model_info, /get_server_info). Bad input gets a vLLM-style JSON
// error ({"error": {message, type, param, code}}) and never reaches the engine.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv, type ErrorObject } from 'ajv';
import { EngineRequestError, type EngineEvent } from './engine.js';
import type { RealtimeDriver } from './realtime.js';
import { renderMetrics } from './metrics.js';
import { completionsRenderBody, loadBody, modelInfoBody, serverInfoBody, tokenizeBody, TokenizeError } from './engineInfo.js';
import type { SimulatorOptions } from './config.js';
import { chainHash, randomText, renderChat, splitTokens, tokenizePrompt, ROOT_HASH, type ChatMessage } from './tokens.js';

export const REPLICA_HEADER = 'x-simulator-replica';

export interface ReplicaContext {
  name: string;
  options: SimulatorOptions;
  driver: RealtimeDriver;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type: string, readonly param: string | null = null) { super(message); }
}
const badRequest = (message: string, param: string | null = null) => new HttpError(400, message, 'BadRequestError', param);

const maxTokensSchema = { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] };
const streamSchema = { type: ['boolean', 'null'] };
const streamOptionsSchema = { anyOf: [{ type: 'null' }, { type: 'object', properties: { include_usage: { type: ['boolean', 'null'] } } }] };
const nSchema = { anyOf: [{ const: 1 }, { type: 'null' }] };
const modelSchema = { type: ['string', 'null'] };

const COMPLETION_SCHEMA = {
  type: 'object',
  required: ['prompt'],
  properties: {
    model: modelSchema,
    prompt: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1 } }] },
    max_tokens: maxTokensSchema,
    stream: streamSchema,
    stream_options: streamOptionsSchema,
    n: nSchema,
  },
};

const CHAT_SCHEMA = {
  type: 'object',
  required: ['messages'],
  properties: {
    model: modelSchema,
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', minLength: 1 },
          content: {
            anyOf: [
              { type: 'string' },
              { type: 'null' },
              { type: 'array', items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } } },
            ],
          },
        },
      },
    },
    max_tokens: maxTokensSchema,
    max_completion_tokens: maxTokensSchema,
    stream: streamSchema,
    stream_options: streamOptionsSchema,
    n: nSchema,
  },
};

const ajv = new Ajv({ allErrors: false });
const validateCompletion = ajv.compile(COMPLETION_SCHEMA);
const validateChat = ajv.compile(CHAT_SCHEMA);

// What a top-level field must be, for messages clearer than a failed anyOf branch.
const EXPECTED: Record<string, string> = {
  model: 'a string',
  prompt: 'a non-empty string or a non-empty array of non-empty strings',
  max_tokens: 'an integer >= 1',
  max_completion_tokens: 'an integer >= 1',
  stream: 'a boolean',
  stream_options: 'an object like {"include_usage": true}',
  n: '1 (one choice per prompt)',
};

function schemaError(errors: ErrorObject[] | null | undefined): HttpError {
  const e = errors?.[0];
  if (!e) return badRequest('invalid request');
  const missing = (e.params as { missingProperty?: string }).missingProperty;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (!path && missing) return badRequest(`'${missing}' is required`, missing);
  if (!path) return badRequest('request body must be a JSON object');
  const param = path.split('.')[0]!;
  if (param === path && EXPECTED[param]) return badRequest(`'${param}' must be ${EXPECTED[param]}`, param);
  if (path.startsWith('messages') && e.keyword !== 'required' && /content/.test(path)) {
    return badRequest(`'${path}' must be a string or an array of {"type": "text", "text": string} parts`, param);
  }
  return badRequest(`'${path}'${missing ? `: '${missing}' is required` : ` ${e.message ?? 'is invalid'}`}`, param);
}

interface Choice {
  index: number;
  promptTokens: number;
  blockHashes: number[];
  pieces: string[];
  finishReason: 'stop' | 'length';
  engineId: number;
  cachedTokens: number;
  done: boolean;
}

interface ParsedRequest {
  kind: 'completion' | 'chat';
  model: string;
  /** The LoRA adapter the model names, if it names one. */
  lora?: string;
  stream: boolean;
  includeUsage: boolean;
  choices: Choice[];
}

function outputFor(o: SimulatorOptions, promptText: string, echoText: string, maxTokens: number): { pieces: string[]; finishReason: 'stop' | 'length' } {
  if (o.mode === 'echo') {
    const all = splitTokens(echoText);
    if (all.length === 0) return { pieces: [''], finishReason: 'stop' };
    return all.length <= maxTokens ? { pieces: all, finishReason: 'stop' } : { pieces: all.slice(0, maxTokens), finishReason: 'length' };
  }
  return { pieces: randomText(chainHash(o.seed, promptText) ^ chainHash(ROOT_HASH, String(o.seed)), maxTokens), finishReason: 'length' };
}

function parseRequest(ctx: ReplicaContext, kind: 'completion' | 'chat', body: unknown): ParsedRequest {
  const o = ctx.options;
  const ok = kind === 'completion' ? validateCompletion(body) : validateChat(body);
  if (!ok) throw schemaError(kind === 'completion' ? validateCompletion.errors : validateChat.errors);
  const b = body as Record<string, unknown>;
  const served = o.servedModelName.length ? o.servedModelName : [o.model];
  const model = (b.model as string | null | undefined) ?? served[0]!;
  const lora = o.loraModules.includes(model) ? model : undefined;
  if (!served.includes(model) && lora === undefined) throw new HttpError(404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
  const maxTokens = (kind === 'chat' ? (b.max_completion_tokens ?? b.max_tokens) : b.max_tokens) as number | null | undefined;
  const texts: { prompt: string; echo: string }[] = [];
  if (kind === 'completion') {
    for (const p of typeof b.prompt === 'string' ? [b.prompt] : (b.prompt as string[])) texts.push({ prompt: p, echo: p });
  } else {
    const messages: ChatMessage[] = (b.messages as { role: string; content?: string | null | { text: string }[] }[]).map((m) => ({
      role: m.role,
      content: typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? m.content.map((p) => p.text).join('') : '',
    }));
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    texts.push({ prompt: renderChat(messages), echo: lastUser?.content ?? '' });
  }
  const stream = b.stream === true;
  const includeUsage = stream && (b.stream_options as { include_usage?: boolean } | null | undefined)?.include_usage === true;
  const choices = texts.map((t, index): Choice => {
    const tok = tokenizePrompt(t.prompt, o.blockSize);
    const limit = maxTokens ?? Math.max(1, Math.min(o.defaultMaxTokens, o.maxModelLen - tok.promptTokens));
    const out = outputFor(o, t.prompt, t.echo, limit);
    return { index, promptTokens: tok.promptTokens, blockHashes: tok.blockHashes, ...out, engineId: 0, cachedTokens: 0, done: false };
  });
  return { kind, model, stream, includeUsage, choices, ...(lora !== undefined ? { lora } : {}) };
}

function usageOf(choices: Choice[]) {
  const prompt = choices.reduce((a, c) => a + c.promptTokens, 0);
  const completion = choices.reduce((a, c) => a + c.pieces.length, 0);
  const cached = choices.reduce((a, c) => a + c.cachedTokens, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

let requestCounter = 0;

export function sendError(res: ServerResponse, status: number, message: string, type: string, param: string | null, replica?: string): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = JSON.stringify({ error: { message, type, param, code: status } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(replica ? { [REPLICA_HEADER]: replica } : {}) });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new HttpError(413, `request body larger than ${limit} bytes`, 'BadRequestError')); req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`);
  }
}

function sendJson(ctx: ReplicaContext, res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [REPLICA_HEADER]: ctx.name });
  res.end(body);
}

/** A node request listener serving one replica. */
export function createReplicaHandler(ctx: ReplicaContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(ctx, req, res).catch((err: unknown) => {
      if (err instanceof HttpError) sendError(res, err.status, err.message, err.type, err.param, ctx.name);
      else sendError(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`, 'InternalServerError', null, ctx.name);
    });
  };
}

async function handle(ctx: ReplicaContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const method = req.method ?? 'GET';
  const o = ctx.options;
  const route = (m: string) => { if (method !== m) throw new HttpError(405, `method ${method} not allowed on ${path}`, 'MethodNotAllowed'); };
  switch (path) {
    case '/health':
    case '/health/ready': {
      route('GET');
      res.writeHead(200, { [REPLICA_HEADER]: ctx.name, 'content-length': 0 });
      res.end();
      return;
    }
    case '/metrics': {
      route('GET');
      const text = renderMetrics(ctx.driver.snapshot(), { modelName: o.model, gpuMemoryUtilization: o.gpuMemoryUtilization });
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', [REPLICA_HEADER]: ctx.name });
      res.end(text);
      return;
    }
    case '/v1/models': {
      route('GET');
      const created = Math.floor(Date.now() / 1000);
      const names = o.servedModelName.length ? o.servedModelName : [o.model];
      const body = JSON.stringify({
        object: 'list',
        data: [
          ...names.map((id) => ({ id, object: 'model', created, owned_by: 'vllm', root: o.model, parent: null, max_model_len: o.maxModelLen })),
          ...o.loraModules.map((id) => ({ id, object: 'model', created, owned_by: 'vllm', root: id, parent: o.model, max_model_len: o.maxModelLen })),
        ],
      });
      res.writeHead(200, { 'content-type': 'application/json', [REPLICA_HEADER]: ctx.name });
      res.end(body);
      return;
    }
    case '/load': {
      route('GET');
      return sendJson(ctx, res, loadBody({ running: ctx.driver.engine.numRunning, waiting: ctx.driver.engine.numWaiting }));
    }
    case '/get_model_info':
    case '/model_info': {
      route('GET');
      return sendJson(ctx, res, modelInfoBody(o));
    }
    case '/get_server_info':
    case '/server_info': {
      route('GET');
      return sendJson(ctx, res, serverInfoBody(o, req.socket.localPort ?? 0));
    }
    case '/tokenize': {
      route('POST');
      const body = parseJson(await readBody(req, o.maxBodyBytes));
      try {
        return sendJson(ctx, res, tokenizeBody(o, body));
      } catch (err) {
        if (err instanceof TokenizeError) throw badRequest(err.message, err.param);
        throw err;
      }
    }
    case '/v1/completions/render': {
      route('POST');
      const body = parseJson(await readBody(req, o.maxBodyBytes));
      try {
        return sendJson(ctx, res, completionsRenderBody(o, body, `cmpl-${ctx.name}-${++requestCounter}`));
      } catch (err) {
        if (err instanceof TokenizeError) throw badRequest(err.message, err.param);
        throw err;
      }
    }
    case '/v1/completions':
    case '/v1/chat/completions': {
      route('POST');
      const body = parseJson(await readBody(req, o.maxBodyBytes));
      const parsed = parseRequest(ctx, path === '/v1/completions' ? 'completion' : 'chat', body);
      serve(ctx, parsed, req, res);
      return;
    }
    default:
      throw new HttpError(404, `no route for ${method} ${path}`, 'NotFoundError');
  }
}

function serve(ctx: ReplicaContext, p: ParsedRequest, req: IncomingMessage, res: ServerResponse): void {
  const driver = ctx.driver;
  if (driver.engine.numWaiting + p.choices.length > ctx.options.maxWaitingQueueLength) {
    throw new HttpError(429, `waiting queue is full (${ctx.options.maxWaitingQueueLength} requests)`, 'TooManyRequests');
  }
  const seq = ++requestCounter;
  const id = `${p.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${ctx.name}-${seq}`;
  const created = Math.floor(Date.now() / 1000);
  const object = p.kind === 'chat' ? 'chat.completion' : 'text_completion';
  let remaining = p.choices.length;
  let finished = false;

  const chunk = (choices: unknown[], usage?: unknown) => {
    const payload: Record<string, unknown> = { id, object: p.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created, model: p.model, choices };
    if (usage !== undefined) payload.usage = usage;
    res.write(`data: ${JSON.stringify(payload)}\n\n`);
  };
  const streamPiece = (c: Choice, index: number) => {
    const last = index === c.pieces.length - 1;
    const text = c.pieces[index] ?? '';
    if (p.kind === 'chat') {
      if (index === 0) chunk([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      chunk([{ index: c.index, delta: { content: text }, logprobs: null, finish_reason: last ? c.finishReason : null }]);
    } else {
      chunk([{ index: c.index, text, logprobs: null, finish_reason: last ? c.finishReason : null }]);
    }
  };

  const onEvent = (c: Choice) => (e: EngineEvent) => {
    if (finished) return;
    if (e.kind === 'first_token') {
      c.cachedTokens = e.cachedTokens;
      if (p.stream) streamPiece(c, 0);
    } else if (e.kind === 'token') {
      if (p.stream) streamPiece(c, e.index);
    } else {
      c.done = true;
      if (--remaining > 0) return;
      finished = true;
      if (p.stream) {
        if (p.includeUsage) chunk([], usageOf(p.choices));
        res.end('data: [DONE]\n\n');
      } else {
        const choices = p.choices.map((ch) => {
          const text = ch.pieces.join('');
          return p.kind === 'chat'
            ? { index: ch.index, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: ch.finishReason }
            : { index: ch.index, text, logprobs: null, finish_reason: ch.finishReason };
        });
        const body = JSON.stringify({ id, object, created, model: p.model, choices, usage: usageOf(p.choices) });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), [REPLICA_HEADER]: ctx.name });
        res.end(body);
      }
    }
  };

  const submitted: Choice[] = [];
  try {
    for (const c of p.choices) {
      c.engineId = driver.submit({ promptTokens: c.promptTokens, blockHashes: c.blockHashes, outputTokens: c.pieces.length, finishReason: c.finishReason, ...(p.lora !== undefined ? { lora: p.lora } : {}) }, onEvent(c));
      submitted.push(c);
    }
  } catch (err) {
    for (const c of submitted) driver.abort(c.engineId);
    if (err instanceof EngineRequestError) throw badRequest(err.message, err.param);
    throw err;
  }
  if (p.stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', [REPLICA_HEADER]: ctx.name });
    res.flushHeaders();
  }
  // A client that goes away frees its sequences' KV blocks, as vLLM aborts the request.
  res.on('close', () => {
    if (finished) return;
    finished = true;
    for (const c of p.choices) if (!c.done) driver.abort(c.engineId);
  });
  void req;
}
