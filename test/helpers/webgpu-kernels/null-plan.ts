// Run by test/integration/webgpu-quant.test.ts in a process of its own, on Dawn's null device
// (which validates every command and computes nothing): a Llama-3.1-8B-shaped base planned at
// every precision (kernels/base/webgpu-plan.ts) within the limits the device reports, and the
// plan's largest buffers of codes and of scales made and bound to a kernel there, each inside a
// validation error scope; and, for contrast, an unchunked 4-bit lm_head bound the same way.
import * as tf from '@tensorflow/tfjs-core';
import { DAWN_NULL_DEVICE } from '../../../bench/webgpu-host';
import { BASE_PRECISIONS, DEFAULT_GROUP_SIZE, packedBytes, type BasePrecision } from '../../../kernels/base/quant';
import { deviceBufferLimits } from '../../../kernels/base/webgpu-quant';
import { planBaseBuffers, type BufferLimits, type ModelShape } from '../../../kernels/base/webgpu-plan';
import { runHelper, startWebgpu } from '../webgpu-start';

export interface Result {
  limits: BufferLimits;
  plans: {
    precision: BasePrecision;
    buffers: number;
    totalBytes: number;
    largestBuffer: number;
    embedding: { rows: number; chunks: number };
    lmHead: { rows: number; chunks: number };
    /** Buffers made and bound. */
    bound: number;
    /** What the device reported while making and binding them. */
    errors: string[];
  }[];
  unchunkedLmHead: { bytes: number; errors: string[] };
}

export const LLAMA_3_1_8B: ModelShape = { hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocabulary: 128256, tied: false };

/** The parts of a GPUDevice this uses. */
interface Device {
  createBuffer(descriptor: { size: number; usage: number }): { destroy(): void };
  createShaderModule(descriptor: { code: string }): object;
  createComputePipeline(descriptor: { layout: 'auto'; compute: { module: object; entryPoint: string } }): { getBindGroupLayout(index: number): object };
  createBindGroup(descriptor: { layout: object; entries: { binding: number; resource: { buffer: object } }[] }): object;
  pushErrorScope(filter: 'validation' | 'out-of-memory'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}

const STORAGE = 0x80;

runHelper(async () => {
  await startWebgpu(DAWN_NULL_DEVICE);
  const device = (tf.backend() as unknown as { device: Device }).device;
  const limits = deviceBufferLimits();
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> b : array<u32>;\n@compute @workgroup_size(1) fn main() { b[0] = 0u; }' }), entryPoint: 'main' },
  });
  /** Makes a buffer of `size` bytes and binds it; what the device reported. */
  const bind = async (size: number): Promise<string[]> => {
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const buffer = device.createBuffer({ size, usage: STORAGE });
    device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] });
    const errors = [await device.popErrorScope(), await device.popErrorScope()].flatMap((e) => (e ? [e.message.split('\n')[0]!] : []));
    buffer.destroy();
    return errors;
  };
  const plans: Result['plans'] = [];
  for (const precision of BASE_PRECISIONS) {
    const plan = planBaseBuffers(LLAMA_3_1_8B, { precision, groupSize: DEFAULT_GROUP_SIZE }, limits);
    const chunks = plan.weights.flatMap((w) => w.chunks);
    const sizes = [...new Set([Math.max(...chunks.map((c) => c.codeBytes)), Math.max(...chunks.map((c) => c.scaleBytes))])].filter((s) => s > 0);
    const errors: string[] = [];
    for (const size of sizes) errors.push(...(await bind(size)));
    const find = (name: string) => plan.weights.find((w) => w.name === name)!;
    const [embedding, lmHead] = [find('model.embed_tokens.weight'), find('lm_head.weight')];
    plans.push({
      precision,
      buffers: plan.buffers,
      totalBytes: plan.totalBytes,
      largestBuffer: plan.largestBuffer,
      embedding: { rows: embedding.rows, chunks: embedding.chunks.length },
      lmHead: { rows: lmHead.rows, chunks: lmHead.chunks.length },
      bound: sizes.length,
      errors,
    });
  }
  const { vocabulary, hidden } = LLAMA_3_1_8B;
  const whole = packedBytes(vocabulary, hidden, { precision: 'int4', groupSize: DEFAULT_GROUP_SIZE }) - 4 * vocabulary * (hidden / DEFAULT_GROUP_SIZE);
  const result: Result = { limits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize }, plans, unchunkedLmHead: { bytes: whole, errors: await bind(whole) } };
  console.log(JSON.stringify(result));
});
