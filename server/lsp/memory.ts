// A rough peak-memory estimate of a training run, for the diagnostic that warns before a run
// aborts on a backend with a fixed heap. Simple on purpose; every constant is named here.
//
//   weights      = 4 B × base parameters          tfjs has no fp16: the base is held as float32
//   adapter      = 3 × 4 B × trainable             the weights and AdamW's two moments
//   activations  = 4 B × batch × max_length × (layers × hidden × 16 + vocab × 4) × 4
//
// Per token, the layers keep ~16 hidden-wide float32 tensors each for the backward pass (norms,
// q/k/v/o, the MLP's gate/up/product, residuals), and the loss materialises ~4 [tokens × vocab]
// float32 tensors (logits, log-softmax, one-hot, their gradient). The final ×4 is calibrated, not
// derived: it stands for the backward pass's gradients and temporaries next to what the forward
// pass kept, and a wasm heap that grows and never shrinks. It is the smallest round factor that
// fits what is known: a ~100M Llama (hidden 768, 12 layers, vocab 32000) at 4 × 256 tokens aborts
// on wasm (4 GB heap), at 1 × 256 it trains (README, "Performance"): it estimates 4.9 GB and
// 1.5 GB. Factors from ~3.5 to ~13 fit those two facts; the lowest warns least falsely.
import { totalmem } from 'node:os';
import type { BackendPreference } from '../../kernels/backend-names';

export const BYTES = 4;
const PER_LAYER_WIDTH = 16;
const PER_VOCAB = 4;
export const ACTIVATION_FACTOR = 4;
/** wasm32: the heap addresses 4 GiB at most. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface MemoryInputs {
  baseParameters: number;
  trainable: number;
  batch: number;
  maxLength: number;
  layers: number;
  hidden: number;
  vocab: number;
}

export interface MemoryEstimate {
  weights: number;
  adapter: number;
  activations: number;
  total: number;
}

export function estimateMemory(i: MemoryInputs): MemoryEstimate {
  const weights = BYTES * i.baseParameters;
  const adapter = 3 * BYTES * i.trainable;
  const activations = BYTES * i.batch * i.maxLength * (i.layers * i.hidden * PER_LAYER_WIDTH + i.vocab * PER_VOCAB) * ACTIVATION_FACTOR;
  return { weights, adapter, activations, total: weights + adapter + activations };
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
