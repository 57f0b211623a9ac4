// Merging an adapter into a ~100M-parameter model vs only reading and writing the same files:
// the ratio says what the merge itself costs on top of the unavoidable I/O.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAdapterSpec } from '../kernels/adapter/spec';
import type { BackendChoice } from '../protocol/backends';
import { initAdapterWeights } from '../kernels/adapter/init';
import { mergeIntoModel } from '../server/engine/merge';
import { Checkpoint } from '../server/formats/checkpoint';
import { writeSafetensors, type TensorToWrite, type WritableDtype } from '../server/formats/safetensors';
import { LLAMA_100M, llamaLinearModules, llamaParameterCount, writeRandomLlama } from './random-llama';
import { median } from '../server/engine/median';
import { inTurn } from './measure';
import type { Adapter } from '../kernels/adapter/linear';

export interface MergeBenchResult {
  bench: 'merge';
  backend: string;
  parameters: number;
  dtype: WritableDtype;
  adapted_modules: number;
  rounds: number;
  copy_median_s: number;
  merge_median_s: number;
  merge_over_copy: number;
}

/** Reads every tensor and writes it back out unchanged: the I/O floor of a merge. */
async function copyModel(from: string, to: string): Promise<void> {
  const checkpoint = await Checkpoint.open(from);
  try {
    for (const file of checkpoint.files) {
      const tensors: TensorToWrite[] = [];
      for (const [name, info] of file.tensors) tensors.push({ name, dtype: info.dtype as WritableDtype, shape: info.shape, data: await file.readFloat32(name) });
      await writeSafetensors(join(to, 'model.safetensors'), tensors, file.metadata);
    }
  } finally {
    await checkpoint.close();
  }
}

export async function benchMerge(choice: BackendChoice, options: { rounds: number; dtype: WritableDtype; rank: number }): Promise<MergeBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'moslora-bench-merge-'));
  try {
    const base = join(dir, 'base');
    await writeRandomLlama(base, LLAMA_100M, options.dtype);
    const modules = llamaLinearModules(LLAMA_100M);
    const targets = modules.filter((m) => /\.(q_proj|k_proj|v_proj|up_proj|down_proj)$/.test(m.name));
    const adapters = new Map<string, Adapter>(
      targets.map((m, i) => {
        const spec = resolveAdapterSpec({ method: 'moslora', dIn: m.dIn, dOut: m.dOut, r: options.rank, alpha: 2 * options.rank, bInit: 'kaiming' });
        return [m.name, { spec, weights: initAdapterWeights(spec, i) }];
      }),
    );
    const copy: number[] = [];
    const merge: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      // neither always finds a warmer page cache
      for (const what of inTurn(['copy', 'merge'] as const, round)) {
        const out = join(dir, `${what}-${round}`);
        const started = performance.now();
        if (what === 'copy') {
          await mkdir(out, { recursive: true });
          await copyModel(base, out);
        } else {
          await mergeIntoModel(base, out, adapters, modules);
        }
        (what === 'copy' ? copy : merge).push((performance.now() - started) / 1000);
        await rm(out, { recursive: true, force: true });
      }
    }
    const [c, m] = [median(copy), median(merge)];
    return {
      bench: 'merge', backend: choice.backend, parameters: llamaParameterCount(LLAMA_100M), dtype: options.dtype, adapted_modules: targets.length,
      rounds: options.rounds, copy_median_s: Number(c.toFixed(3)), merge_median_s: Number(m.toFixed(3)), merge_over_copy: Number((m / c).toFixed(3)),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
