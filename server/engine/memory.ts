// A peak-memory estimate of a training run: the language server's diagnostic warns with it
// before a run outgrows a backend with a fixed heap, the engine turns gradient checkpointing on
// with it (training.gradient_checkpointing: auto) and refuses a run that cannot fit the machine.
// Every constant is named here and fitted to measurements; the rule is that the estimate errs on
// the safe side (at or above the measured peak).
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
//   update       = OPTIMIZER_COPIES × 4 B × trainable                 AdamW's step
//   heap         = weights + runtime + max(adapter + activations, update)
//   process      = heap + native + PROCESS_BYTES
//
// Per token and layer, tfjs keeps the forward pass's tensors until the whole backward pass is
// done, next to the gradients it makes: PER_HIDDEN hidden-wide floats (norms, q/k/v/o, the MLP's
// gate/up/product, residuals, gradients) and PER_SCORE floats per head and key (scores, mask,
// softmax, their gradients). The loss keeps the logits and makes their gradient and a chunk's
// temporaries: PER_VOCAB floats per token. The constants are fitted to the wasm heap's high-water
// mark of a ~100M Llama (hidden 768, 12 layers, 12 heads, vocab 32000, 256 tokens, MoSLoRA r 16 on
// q,k,v,up,down; `npm run bench -- memory`, records in bench/results/memory.jsonl), with and
// without checkpointing and at several batch sizes. PER_SCORE is assumed (six [T × S] tensors per
// head), not separated by those measurements, which all use 256 tokens.
//
// The activations are freed before the optimizer runs, so its step is a second peak, not added to
// the first: AdamW (server/engine/optim.ts) updates all trainable values as one flat vector inside
// one tf.tidy, which keeps every intermediate until the update ends. OPTIMIZER_COPIES counts the
// trainable-sized float32 vectors alive at its peak: the parameters, the two moments, the flat
// gradient and its clipped copy, the concatenated parameters, their weight-decayed copy and the
// update's temporaries (tfjs's own profile of AdamW.applyClipped, engine.memory.test.ts). It is the larger peak
// from a few billion base parameters up, where the adapter has tens of millions of values (an
// 8B Llama's MoSLoRA r 16 on q,k,v,up,down: 28M, 2.3 GiB at the update).
//
// A base in the native weight store (kernels/base/: wasm and cpu with MLAS) takes no heap: its
// linear weights, embedding and lm_head are packed matrices outside it at their stored precision
// (nativeBytes, from baseStoreBytes), and their products dequantise into a few scratch blocks
// (NATIVE_SCRATCH_BYTES); what stays in the heap (norms, biases) is left out as negligible. The
// heap's 4 GiB then bounds activations and the adapter only; the machine's memory bounds the
// process: the heap, the store and what the process holds outside both (PROCESS_BYTES). The
// process's estimate is checked against the resident peaks `npm run bench -- scale` measured for
// Qwen2.5-0.5B/1.5B/3B and Llama-3.1-8B shapes at each stored precision (bench/results/scale.jsonl).
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
/** Trainable-sized float32 vectors alive at AdamW's peak (server/engine/optim.ts AdamW.applyClipped, its tf.tidy). */
export const OPTIMIZER_COPIES = 23;
/**
 * A trainer process's memory outside the wasm heap and the native store: Node, V8's heap, tfjs's
 * JavaScript, onnxruntime's library, the tokenizer. Measured: 337 MiB peak RSS for the tiny
 * example model, whose heap estimate is 217 MiB; 100–170 MiB beside the heap and the store in
 * bench/results/scale.jsonl's peaks.
 */
export const PROCESS_BYTES = 128 * 1024 ** 2;
/** The native products' scratch: a dequantised block of W (16 MiB), its output and a share of dx. */
export const NATIVE_SCRATCH_BYTES = 48 * 1024 ** 2;
/** wasm32: the heap addresses 4 GiB at most. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

export interface MemoryInputs extends ModelShape {
  baseParameters: number;
  /** Bytes of the base in the native weight store, outside the heap (baseStoreBytes); absent: the base is float32 tensors in the heap. */
  nativeBytes?: number;
  /** What multiplies on the wasm heap: XNNPACK keeps a packed copy of each weight, MLAS none. */
  products: ProductEngine;
  trainable: number;
  batch: number;
  maxLength: number;
  checkpointing: boolean;
}

export interface MemoryEstimate {
  /** The base's tensors in the heap. */
  weights: number;
  /** The native weight store and its scratch, outside the heap. */
  native: number;
  adapter: number;
  activations: number;
  /** AdamW's step: its peak of trainable-sized vectors, after the activations are freed. */
  update: number;
  /** The heap's peak. */
  total: number;
  /** The process's: the heap, the native store and PROCESS_BYTES. */
  process: number;
}

export function estimateMemory(i: MemoryInputs): MemoryEstimate {
  const weights = i.nativeBytes === undefined ? WEIGHT_COPIES[i.products] * BYTES * i.baseParameters : 0;
  const native = i.nativeBytes === undefined ? 0 : i.nativeBytes + NATIVE_SCRATCH_BYTES;
  const adapter = 3 * BYTES * i.trainable;
  const perLayer = i.hidden * PER_HIDDEN + i.heads * i.maxLength * PER_SCORE;
  const perToken = (i.checkpointing ? perLayer + i.layers * i.hidden : i.layers * perLayer) + i.vocab * PER_VOCAB;
  const activations = BYTES * i.batch * i.maxLength * perToken;
  const update = OPTIMIZER_COPIES * BYTES * i.trainable;
  const total = weights + RUNTIME_BYTES + Math.max(adapter + activations, update);
  return { weights, native, adapter, activations, update, total, process: total + native + PROCESS_BYTES };
}

/** What of an estimate a limit bounds: the heap's peak for the wasm heap, the process's for the machine's memory. */
export function boundedBytes(estimate: MemoryEstimate, limit: MemoryLimit): number {
  return limit.scope === 'heap' ? estimate.total : estimate.process;
}

export interface MemoryLimit {
  bytes: number;
  /** Says where the limit comes from, e.g. "the wasm backend's 4 GiB heap". */
  what: string;
  /** What it bounds: the wasm heap, or the whole process (the machine's memory). */
  scope: 'heap' | 'machine';
}

/** What a run on this backend can use; null when unknown (GPU memory: webgpu, tensorflow). */
export function memoryLimit(backend: BackendPreference, machineMemory = totalmem()): MemoryLimit | null {
  switch (backend) {
    case 'wasm':
      return { bytes: WASM_HEAP_BYTES, what: "the wasm backend's 4 GiB heap", scope: 'heap' };
    case 'auto':
      return { bytes: WASM_HEAP_BYTES, what: "the wasm backend's 4 GiB heap (backend auto lands on wasm on a machine without a usable GPU)", scope: 'heap' };
    case 'cpu':
      return { bytes: machineMemory, what: `this machine's ${formatBytes(machineMemory)} of memory (backend cpu)`, scope: 'machine' };
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
  const without = boundedBytes(estimateMemory({ ...run, checkpointing: false }), limit);
  if (without <= limit.bytes) return { on: false };
  const withIt = boundedBytes(estimateMemory({ ...run, checkpointing: true }), limit);
  return {
    on: true,
    reason: `gradient checkpointing on (training.gradient_checkpointing: auto): without it this run needs an estimated ${formatBytes(without)}, more than ${limit.what}; with it ${formatBytes(withIt)}`,
  };
}

/**
 * Why a run on a CPU backend cannot start, or null: its estimate, with gradient checkpointing
 * unless the config turns it off, is more than the machine's whole memory, shared by `threads`
 * threads each holding its share of the batch. Such a run could only fail after loading the
 * model (the wasm heap exhausted, or the machine out of memory).
 */
export function machineRefusal(
  run: Omit<MemoryInputs, 'checkpointing' | 'batch'> & { batch: number; checkpointing: boolean | 'auto'; threads: number },
  machineMemory = totalmem(),
  /** Other stored precisions of the base to suggest, the least change first: the config's setting and the native store's bytes. */
  lower: readonly { setting: string; nativeBytes?: number }[] = [],
): string | null {
  const checkpointing = run.checkpointing !== false;
  // each thread's heap holds its share of the batch; the native store is shared by all
  const need = (nativeBytes: number | undefined) => {
    const perThread = estimateMemory({ ...run, ...(nativeBytes === undefined ? {} : { nativeBytes }), batch: Math.ceil(run.batch / run.threads), checkpointing });
    return perThread.total * run.threads + perThread.native + PROCESS_BYTES;
  };
  const needed = need(run.nativeBytes);
  if (needed <= machineMemory) return null;
  const fits = lower.find((p) => p.nativeBytes !== undefined && need(p.nativeBytes) <= machineMemory);
  return (
    `training.batch_size ${run.batch} × data.max_length ${run.maxLength} needs an estimated ${formatBytes(needed)}${checkpointing ? ' even with gradient checkpointing' : ''}, ` +
    `more than this machine's ${formatBytes(machineMemory)} of memory; ` +
    (fits ? `store the base in lower precision (${fits.setting}: an estimated ${formatBytes(need(fits.nativeBytes))}), or ` : '') +
    `lower training.batch_size (raising training.gradient_accumulation keeps the effective batch) or data.max_length` +
    `${checkpointing ? '' : ', or set training.gradient_checkpointing: true'}`
  );
}
