// Step-time model of one engine iteration (one forward pass over the whole batch).
// Defaults: Qwen2.5-3B-Instruct, FP16, vLLM V1 on one T4 (REFERENCE.md §7, one public measurement):
//   lone request:  TTFT = 38 ms + 0.228 ms x uncached prompt tokens
//   decode:        27 ms per token single stream, 32 ms at 16 concurrent, throughput flat past ~50.
// A step that decodes n sequences costs max(itl + perSeq x (n-1), n x itl(saturation)/saturation):
// linear growth while the GPU still has headroom, then time proportional to n (constant tokens/s).
// A step that also prefills P tokens adds (prefillOverhead - itl) + perToken x P, so a lone
// request's first step costs exactly prefillOverhead + perToken x P = its TTFT.

export interface LatencyParams {
  /** Lone-request TTFT intercept, ms (llm-d-inference-sim: prefill-overhead). */
  prefillOverheadMs: number;
  /** Per uncached prompt token, ms (llm-d-inference-sim: prefill-time-per-token). */
  prefillTimePerTokenMs: number;
  /** Single-stream time per output token, ms (llm-d-inference-sim: inter-token-latency). */
  interTokenLatencyMs: number;
  /** Extra decode step time per additional running sequence, ms. */
  decodeTimePerSeqMs: number;
  /** Batch size past which the step time grows in proportion to the batch (throughput plateau). */
  saturationNumSeqs: number;
}

export const T4_QWEN25_3B: LatencyParams = {
  prefillOverheadMs: 38,
  prefillTimePerTokenMs: 0.228,
  interTokenLatencyMs: 27,
  decodeTimePerSeqMs: (32 - 27) / 15, // 27 ms at 1 stream -> 32 ms at 16 streams
  saturationNumSeqs: 50,
};

export class LatencyModel {
  constructor(readonly params: LatencyParams) {}

  /** Time of a decode-only step over n sequences, ms. */
  decodeStepMs(n: number): number {
    if (n <= 0) return 0;
    const p = this.params;
    const linear = p.interTokenLatencyMs + p.decodeTimePerSeqMs * (n - 1);
    const atSaturation = p.interTokenLatencyMs + p.decodeTimePerSeqMs * (p.saturationNumSeqs - 1);
    return Math.max(linear, (n * atSaturation) / p.saturationNumSeqs);
  }

  /** Time of a step over n sequences of which some prefill `prefillTokens` tokens in total, ms. */
  stepMs(n: number, prefillTokens: number): number {
    const p = this.params;
    let t = this.decodeStepMs(n);
    if (prefillTokens > 0) t += Math.max(0, p.prefillOverheadMs - p.interTokenLatencyMs) + p.prefillTimePerTokenMs * prefillTokens;
    return t;
  }
}
