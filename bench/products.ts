// The wasm backend's products on MLAS (onnxruntime's native GEMM, kernels/backends/mlas-matmul.ts) against
// XNNPACK (tfjs-backend-wasm's own, in WebAssembly, one thread): the training workload's step in
// this thread with each (MLAS on --product-threads threads), the two sides alternating rounds. They start from the same adapters and take the same
// steps with the same seeds, so their losses must agree too (to float32 rounding: the two sum in
// different orders).
import { median } from '../server/engine/median';
import { CausalLM } from '../server/models/model';
import { mlasProductCount, setProductThreads, useProductEngine, type ProductEngine } from '../kernels/backends/mlas-matmul';
import { inTurn } from './measure';
import { TrainingWorkload, withBenchModel, type WorkloadOptions, type WorkloadRecord } from './workload';

export interface ProductsOptions extends WorkloadOptions {
  model: string;
  steps: number;
  rounds: number;
  productThreads: number;
}

export interface ProductsBenchResult extends WorkloadRecord {
  bench: 'products';
  device: string;
  steps: number;
  rounds: number;
  /** Threads each of MLAS's products took. */
  product_threads: number;
  mlas_ms: number;
  xnnpack_ms: number;
  /** xnnpack_ms / mlas_ms: how much faster a step is with MLAS's products. */
  speedup: number;
  mlas_products_per_step: number;
  /** max |loss_mlas − loss_xnnpack| / loss_xnnpack over every step both sides took. */
  max_loss_rel_diff: number;
}

const ENGINES: readonly ProductEngine[] = ['mlas', 'xnnpack'];

export async function benchProducts(backend: string, device: string, options: ProductsOptions): Promise<ProductsBenchResult> {
  if (backend !== 'wasm') throw new Error(`products compares the wasm backend's two product engines; the backend is ${backend}`);
  return withBenchModel(options.model, async (dir) => {
    const model = await CausalLM.load(dir);
    const sides = new Map(ENGINES.map((engine) => [engine, new TrainingWorkload(model, options)]));
    const ms = new Map(ENGINES.map((engine) => [engine, [] as number[]]));
    const losses = new Map(ENGINES.map((engine) => [engine, [] as number[]]));
    let products = 0;
    setProductThreads(options.productThreads);
    try {
      // a warm-up step each, then rounds of the same steps on both sides
      for (const [engine, workload] of sides) {
        useProductEngine(engine);
        losses.get(engine)!.push(await workload.step(0));
      }
      for (let round = 0; round < options.rounds; round++) {
        const first = 1 + round * options.steps;
        for (const engine of inTurn(ENGINES, round)) {
          useProductEngine(engine);
          const before = mlasProductCount();
          const timed = await sides.get(engine)!.timedSteps(first, options.steps);
          if (engine === 'mlas') products = (mlasProductCount() - before) / options.steps;
          ms.get(engine)!.push(...timed.ms);
          losses.get(engine)!.push(...timed.losses);
        }
      }
    } finally {
      useProductEngine('mlas');
      setProductThreads(1);
      await Promise.all([...sides.values()].map((side) => side.dispose()));
      model.dispose();
    }
    const [m, x] = [median(ms.get('mlas')!), median(ms.get('xnnpack')!)];
    const reference = losses.get('xnnpack')!;
    return {
      bench: 'products', backend, device, model: options.model, batch: options.batch, tokens: sides.get('mlas')!.tokens, rank: options.rank, checkpointing: options.checkpointing,
      steps: options.steps, rounds: options.rounds, product_threads: options.productThreads, mlas_ms: Math.round(m), xnnpack_ms: Math.round(x), speedup: Number((x / m).toFixed(2)), mlas_products_per_step: products,
      max_loss_rel_diff: Number(Math.max(...losses.get('mlas')!.map((l, i) => Math.abs(l - reference[i]!) / reference[i]!)).toPrecision(2)),
    };
  });
}
