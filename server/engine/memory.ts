// A peak-memory estimate of a training run: the language server's diagnostic warns with it
// before a run outgrows a backend with a fixed heap, and the engine turns gradient checkpointing
// on with it (training.gradient_checkpointing: auto). Every constant is named here and fitted
// to measurements.
//
//   weights      = copies × 4 B × base parameters  float32 (tfjs has no fp16); 2 copies where the
//                                                 products run on XNNPACK, which keeps a packed copy
//                                                 of every weight matrix it multiplies by; 1 where
//                                                 they run on MLAS (kernels/backends/mlas-matmul.ts), which
//                                                 packs a product's operand for that product only,
//                                                 outside the heap
//   adapter      = 3 × 4 B × trainable             the weights and AdamW's two moments
//   runtime      = 80 MiB                          the wasm module, tfjs's bookkeeping, small tensors
//   activations  = 4 B × batch × max_length × (
//                    kept × (hidden × PER_HIDDEN + heads × max_length × PER_SCORE)
//                  + (checkpointing ? layers × hidden : 0)          each layer's kept input
//                  + vocab × PER_VOCAB)
//   kept         = layers, or 1 with gradient checkpointing (one layer is recomputed at a time)
//
// Per token and layer, tfjs keeps the forward pass's tensors until the whole backward pass is
// done, next to the gradients it makes: PER_HIDDEN hidden-wide floats (norms, q/k/v/o, the MLP's
// gate/up/product, residuals, gradients) and PER_SCORE floats per head and key (scores, mask,
// softmax, their gradients). The loss keeps the logits and makes their gradient and a chunk's
// temporaries: PER_VOCAB floats per token. The constants are fitted to the wasm heap's high-water
// mark of a ~100M Llama (hidden 768, 12 layers, 12 heads, vocab 32000, 256 tokens, MoSLoRA r 16 on
// q,k,v,up,down; `npm run bench -- memory`, records in bench/results/memory.jsonl), with and
// without checkpointing and at several batch sizes; the rule is that the estimate errs on the safe
// side (above the measured peak) wherever a run is near the heap's 4 GiB. PER_SCORE is assumed
// (six [T × S] tensors per head), not separated by those measurements, which all use 256 tokens.
import { totalmem } from 'node:os';
import type { BackendPreference } from '../../protocol/backends';
import type { ProductEngine } from '../../kernels/backends/mlas-matmul';
import type { ModelShape } from '../models/config';

export const BYTES = 4;
const WEIGHT_COPIES: Record<ProductEngine, number> = { mlas: 1, xnnpack: 2 };
const PER_HIDDEN = 120;
const PER_SCORE = 6;
const PER_VOCAB = 4;
const RUNTIME_BYTES = 80 * 1024 ** 2;
/** wasm32: the heap addresses 4 GiB at most. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface MemoryInputs extends ModelShape {
  baseParameters: number;
  /** What multiplies on the wasm heap: XNNPACK keeps a packed copy of each weight, MLAS none. */
  products: ProductEngine;
  trainable: number;
  batch: number;
  maxLength: number;
  checkpointing: boolean;
}

export interface MemoryEstimate {
  weights: number;
  adapter: number;
  activations: number;
  total: number;
}

export function estimateMemory(i: MemoryInputs): MemoryEstimate {
  const weights = WEIGHT_COPIES[i.products] * BYTES * i.baseParameters;
  const adapter = 3 * BYTES * i.trainable;
  const perLayer = i.hidden * PER_HIDDEN + i.heads * i.maxLength * PER_SCORE;
  const perToken = (i.checkpointing ? perLayer + i.layers * i.hidden : i.layers * perLayer) + i.vocab * PER_VOCAB;
  const activations = BYTES * i.batch * i.maxLength * perToken;
  return { weights, adapter, activations, total: weights + adapter + RUNTIME_BYTES + activations };
}

export interface MemoryLimit {
  bytes: number;
  /** Says where the limit comes from, e.g. "the wasm backend's 4 GiB heap". */
  what: string;
}

/** What a run on this backend can use; null when unknown (GPU memory: webgpu, tensorflow). */
export function memoryLimit(backend: BackendPreference, machineMemory = totalmem()): MemoryLimit | null {
  switch (backend) {
    case 'wasm':
      return { bytes: WASM_HEAP_BYTES, what: "the wasm backend's 4 GiB heap" };
    case 'auto':
      return { bytes: WASM_HEAP_BYTES, what: "the wasm backend's 4 GiB heap (backend auto lands on wasm on a machine without a usable GPU)" };
    case 'cpu':
      return { bytes: machineMemory, what: `this machine's ${formatBytes(machineMemory)} of memory (backend cpu)` };
    default:
      return null;
  }
}

export function formatBytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

/**
 * Whether a run checkpoints its layers: as the config says, or for `auto` exactly when the run
 * would not fit what the backend can use without it (nothing known about the model or the
 * backend's limit: off). `reason` says why auto turned it on.
 */
export function resolveCheckpointing(
  setting: boolean | 'auto',
  run: Omit<MemoryInputs, 'checkpointing'> | null,
  limit: MemoryLimit | null,
): { on: boolean; reason?: string } {
  if (setting !== 'auto') return { on: setting };
  if (!run || !limit) return { on: false };
  const without = estimateMemory({ ...run, checkpointing: false }).total;
  if (without <= limit.bytes) return { on: false };
  const withIt = estimateMemory({ ...run, checkpointing: true }).total;
  return {
    on: true,
    reason: `gradient checkpointing on (training.gradient_checkpointing: auto): without it this run needs an estimated ${formatBytes(without)}, more than ${limit.what}; with it ${formatBytes(withIt)}`,
  };
}
