// The informational endpoints that routers read from an engine, answered as the engines
// answer them. vLLM's: GET /load ({"server_load"}, vllm/entrypoints/serve/instrumentator) and
// POST /tokenize ({count, max_model_len, tokens, token_strs}). SGLang's, which SGLang's and
// vLLM's routers probe at registration: GET /get_model_info (alias /model_info) and
// GET /get_server_info (alias /server_info: the server's arguments).

import type { SimulatorOptions } from './config.js';
import { chainHash, renderChat, splitTokens, type ChatMessage } from './tokens.js';

/** Qwen2.5's vocabulary size: token ids are drawn below it. */
export const VOCAB_SIZE = 151_936;

/** The simulator's token ids: each 4-character piece maps to a fixed id (same text, same ids). */
export function tokenIds(text: string): number[] {
  return splitTokens(text).map((piece) => chainHash(0, piece) % VOCAB_SIZE);
}

export interface LoadCounters {
  running: number;
  waiting: number;
}

/** vLLM's GET /load: the requests the server is working on. */
export function loadBody(c: LoadCounters): { server_load: number } {
  return { server_load: c.running + c.waiting };
}

export class TokenizeError extends Error {
  constructor(message: string, readonly param: string) { super(message); }
}

/** vLLM's POST /tokenize for a completion-style ({prompt}) or chat-style ({messages}) body. */
export function tokenizeBody(o: SimulatorOptions, body: unknown): { count: number; max_model_len: number; tokens: number[]; token_strs: string[] | null } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TokenizeError('request body must be a JSON object', 'body');
  const b = body as { prompt?: unknown; messages?: unknown; return_token_strs?: unknown };
  let text: string;
  if (typeof b.prompt === 'string') {
    text = b.prompt;
  } else if (Array.isArray(b.messages)) {
    const messages: ChatMessage[] = [];
    for (const m of b.messages as unknown[]) {
      const msg = m as { role?: unknown; content?: unknown };
      if (typeof msg !== 'object' || msg === null || typeof msg.role !== 'string') throw new TokenizeError("each of 'messages' needs a string 'role'", 'messages');
      const content = typeof msg.content === 'string' ? msg.content
        : Array.isArray(msg.content) ? (msg.content as { text?: unknown }[]).map((p) => (typeof p?.text === 'string' ? p.text : '')).join('') : '';
      messages.push({ role: msg.role, content });
    }
    text = renderChat(messages);
  } else {
    throw new TokenizeError("'prompt' (a string) or 'messages' (an array) is required", 'prompt');
  }
  const tokens = tokenIds(text);
  return { count: tokens.length, max_model_len: o.maxModelLen, tokens, token_strs: b.return_token_strs === true ? splitTokens(text) : null };
}

/**
 * vLLM's POST /v1/completions/render: the prompt(s) as the engine would receive them, one entry
 * per prompt, with the token ids this simulator's tokenizer gives.
 */
export function completionsRenderBody(o: SimulatorOptions, body: unknown, requestId: string) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new TokenizeError('request body must be a JSON object', 'body');
  const b = body as { prompt?: unknown; model?: unknown; max_tokens?: unknown };
  const prompts = typeof b.prompt === 'string' ? [b.prompt] : Array.isArray(b.prompt) && b.prompt.every((p) => typeof p === 'string') ? (b.prompt as string[]) : null;
  if (!prompts || prompts.length === 0) throw new TokenizeError("'prompt' must be a string or an array of strings", 'prompt');
  const model = typeof b.model === 'string' ? b.model : o.servedModelName[0] ?? o.model;
  return prompts.map((p, i) => ({
    request_id: `${requestId}-${i}`,
    token_ids: tokenIds(p),
    sampling_params: { max_tokens: typeof b.max_tokens === 'number' ? b.max_tokens : null },
    model,
  }));
}

/** SGLang's GET /get_model_info. */
export function modelInfoBody(o: SimulatorOptions) {
  return {
    model_path: o.model,
    tokenizer_path: o.model,
    is_generation: true,
    preferred_sampling_params: null,
    weight_version: 'default',
    has_image_understanding: false,
    has_audio_understanding: false,
    model_type: 'qwen2',
    architectures: ['Qwen2ForCausalLM'],
  };
}

/** SGLang's GET /get_server_info: the ServerArgs fields that have a counterpart in this simulator. */
export function serverInfoBody(o: SimulatorOptions, port: number) {
  const served = o.servedModelName.length ? o.servedModelName[0]! : o.model;
  return {
    model_path: o.model,
    tokenizer_path: o.model,
    served_model_name: served,
    host: o.host,
    port,
    context_length: o.maxModelLen,
    page_size: o.blockSize,
    max_running_requests: o.maxNumSeqs,
    max_total_tokens: o.kvCacheSize * o.blockSize,
    chunked_prefill_size: o.maxNumBatchedTokens,
    max_queued_requests: o.maxWaitingQueueLength,
    disable_radix_cache: false,
    schedule_policy: 'fcfs',
    tp_size: 1,
    dp_size: 1,
    random_seed: o.seed,
    max_loras_per_batch: o.maxLoras,
  };
}
