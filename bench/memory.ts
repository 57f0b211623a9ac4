// The wasm heap's high-water mark of one MoSLoRA training step of a ~100M Llama-shaped model,
// at several batch sizes with and without gradient checkpointing, next to the estimate the
// language server's memory diagnostic makes (server/engine/memory.ts) for the same run. Each
// configuration runs in a process of its own: a wasm heap grows and never shrinks.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { productEngine, type ProductEngine } from '../kernels/backends/mlas-matmul';
import { heapOf, isWasmHeapExhausted } from '../kernels/backends/wasm-kernels';
import { CausalLM } from '../server/models/model';
import { TrainingWorkload } from './workload';
import { estimateMemory } from '../server/engine/memory';
import { LLAMA_100M, llamaParameterCount, writeRandomLlama, type LlamaShape } from './random-llama';

const RANK = 16;
const TOKENS = 256;

export interface MemoryCase {
  layers: number;
  batch: number;
  checkpointing: boolean;
}

export interface MemoryMeasurement extends MemoryCase {
  /** null when the step ran out of heap (it could not grow past 4 GiB). */
  heap_gib: number | null;
  estimate_gib: number;
}

export interface MemoryBenchResult {
  bench: 'memory';
  model: string;
  /** What multiplied in the steps' processes (the estimate counts XNNPACK's packed weights). */
  products: ProductEngine;
  tokens: number;
  rank: number;
  cases: MemoryMeasurement[];
}

const GiB = 1024 ** 3;

function shapeOf(layers: number): LlamaShape {
  return { ...LLAMA_100M, layers };
}

/** What one case's process measured: the heap's size after the step, in bytes (null when it ran out), and what multiplied. */
interface StepMeasurement {
  heap: number | null;
  products: ProductEngine;
}

/** One training step of one case, in this process. */
export async function measureStep(modelDir: string, c: MemoryCase): Promise<StepMeasurement> {
  const model = await CausalLM.load(modelDir);
  try {
    await new TrainingWorkload(model, { batch: c.batch, tokens: TOKENS, rank: RANK, checkpointing: c.checkpointing }).step(1);
  } catch (error) {
    if (isWasmHeapExhausted(error)) return { heap: null, products: productEngine() };
    throw error;
  }
  return { heap: heapOf(tf.backend() as BackendWasm).length, products: productEngine() };
}

export async function benchMemory(cases: MemoryCase[]): Promise<MemoryBenchResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'moslora-bench-memory-'));
  try {
    const out: MemoryMeasurement[] = [];
    let products: ProductEngine = 'xnnpack';
    for (const c of cases) {
      const shape = shapeOf(c.layers);
      const dir = join(scratch, `llama-${c.layers}`);
      await writeRandomLlama(dir, shape, 'F32');
      const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, process.argv[1]!, 'memory', '--step', JSON.stringify({ dir, ...c })], { maxBuffer: 1 << 20 });
      const { heap, products: used } = JSON.parse(stdout.trim().split('\n').at(-1)!) as StepMeasurement;
      products = used;
      const kv = (shape.hidden / shape.heads) * shape.kvHeads;
      const trainable = shape.layers * (RANK * (2 * shape.hidden + 2 * (shape.hidden + kv) + 2 * (shape.hidden + shape.intermediate)) + 5 * RANK * RANK);
      const estimate = estimateMemory({
        baseParameters: llamaParameterCount(shape), products: used, trainable, batch: c.batch, maxLength: TOKENS,
        layers: shape.layers, hidden: shape.hidden, heads: shape.heads, vocab: shape.vocab, checkpointing: c.checkpointing,
      });
      out.push({ ...c, heap_gib: heap === null ? null : Number((heap / GiB).toFixed(2)), estimate_gib: Number((estimate.total / GiB).toFixed(2)) });
      await rm(dir, { recursive: true, force: true });
    }
    return { bench: 'memory', model: 'random Llama ~100M (hidden 768, 12 heads, vocab 32000; layers as listed)', products, tokens: TOKENS, rank: RANK, cases: out };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
