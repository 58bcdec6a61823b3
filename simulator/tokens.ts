// Text <-> token bookkeeping for the simulator. There is no real tokenizer: a token is
// 4 characters (the usual rule of thumb for English with BPE tokenizers), so a prompt of
// C characters has ceil(C/4) tokens and a 16-token block covers 64 characters.
// Block hashes chain the parent hash, as vLLM's prefix cache does, so equal hashes mean
// equal prefixes up to and including that block.

export const CHARS_PER_TOKEN = 4;

export function countTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** 53-bit string hash seeded by a 53-bit parent; two 32-bit multiply-xorshift lanes. */
export function chainHash(parent: number, text: string, from = 0, to = text.length): number {
  let h1 = 0x9e3779b9 ^ (parent >>> 0);
  let h2 = 0x85ebca6b ^ Math.floor(parent / 0x100000000);
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x9e3779b1);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  return 0x200000 * (h2 >>> 11) + (h1 >>> 0);
}

/** Root of every hash chain (vLLM's NONE_HASH plays this role). */
export const ROOT_HASH = chainHash(0, 'prefix-router-simulator');

export interface TokenizedPrompt {
  promptTokens: number;
  /** One chained hash per FULL block of the prompt; a partial tail block has none. */
  blockHashes: number[];
}

export function tokenizePrompt(text: string, blockSize: number): TokenizedPrompt {
  const promptTokens = countTokens(text);
  const fullBlocks = Math.floor(promptTokens / blockSize);
  const charsPerBlock = blockSize * CHARS_PER_TOKEN;
  const blockHashes: number[] = new Array(fullBlocks);
  let parent = ROOT_HASH;
  for (let b = 0; b < fullBlocks; b++) {
    const from = b * charsPerBlock;
    parent = chainHash(parent, text, from, Math.min(from + charsPerBlock, text.length));
    blockHashes[b] = parent;
  }
  return { promptTokens, blockHashes };
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** A ChatML-style template (the one Qwen2.5 uses), ending with the assistant turn opener. */
export function renderChat(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  return out + '<|im_start|>assistant\n';
}

/** Small deterministic PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Four-character pieces, so the generated text has exactly CHARS_PER_TOKEN chars per token.
const VOCABULARY = [
  ' the', ' and', ' for', ' you', ' can', ' not', ' but', ' all', ' any', ' one', ' our', ' out',
  ' day', ' get', ' has', ' him', ' his', ' how', ' man', ' new', ' now', ' old', ' see', ' two',
  ' way', ' who', ' its', ' let', ' put', ' say', ' she', ' too', ' use', ' yes', ' set', ' run',
  ' key', ' map', ' row', ' bit', ' log', ' tag', ' box', ' sum', ' end', ' top', ' low', ' big',
  'ing.', 'ed, ', 'ion ', 'er. ', ' is,', ' to ', ' of ', ' in ',
];

/** `tokens` pseudo-random tokens, the same for the same seed. */
export function randomText(seed: number, tokens: number): string[] {
  const next = mulberry32(seed);
  const out: string[] = new Array(tokens);
  for (let i = 0; i < tokens; i++) out[i] = VOCABULARY[Math.floor(next() * VOCABULARY.length)]!;
  return out;
}

/** The text split into token pieces (the last one may be shorter). */
export function splitTokens(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += CHARS_PER_TOKEN) out.push(text.slice(i, i + CHARS_PER_TOKEN));
  return out;
}
