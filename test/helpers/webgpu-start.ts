// For helpers run on SwiftShader (test/helpers/swiftshader.ts): the webgpu backend on the adapter
// Dawn finds, started as training starts it when named (kernels/backends/backend.ts: our kernels, the GPU's errors watched).
import * as tf from '@tensorflow/tfjs-core';
import { countGpuTraffic, type GpuTraffic } from '../../bench/webgpu-host';
import { selectBackend } from '../../kernels/backends/backend';

/** dawnFlags: Dawn's options (['backend=null'] for its null device, which computes nothing). */
export async function startWebgpu(dawnFlags: string[] = []): Promise<void> {
  await selectBackend('webgpu', { dawnFlags });
}

/** Runs a helper's main, printing its error's message (not a stack through tsx) and exiting 1 on failure. */
export function runHelper(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    },
  );
}

/**
 * A kernel runner's main (test/helpers/webgpu-kernels/): the cases the test passed as JSON (the
 * first argument) run on the webgpu backend, their results printed as one JSON line.
 */
export function runCases<C, R>(run: (cases: C[]) => Promise<R[]>): void {
  runHelper(async () => {
    const cases = JSON.parse(process.argv[2]!) as C[];
    await startWebgpu();
    console.log(JSON.stringify({ results: await run(cases) }));
  });
}

/**
 * f's value and the gradients of sum(f(inputs) · dy) with respect to every input, read back, with
 * what the forward and backward pass sent to and read from the GPU (bench/webgpu-host.ts
 * countGpuTraffic) in the counts.
 */
export async function valueAndGradsCounted(f: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], dy: tf.Tensor): Promise<{ values: number[][]; traffic: GpuTraffic }> {
  let y: tf.Tensor | undefined;
  const { traffic, stop } = countGpuTraffic();
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul((y = tf.keep(f(...xs))), dy)))(inputs);
  const outputs = [y!, ...grads];
  const values = await Promise.all(outputs.map(async (t) => Array.from(await t.data())));
  stop();
  tf.dispose(outputs);
  return { values, traffic };
}

/** A kernel's runs one way: on its WGSL kernels, as tfjs ops, or as y = x (what the loss and the gradient's seed take alone). */
export type Way = 'fused' | 'composite' | 'identity';

/**
 * Runs every case on the kernels and as tfjs ops, each with its dispatches and uploads less the
 * identity run's: the kernel's own, forward and backward. The first case runs once more first,
 * uncounted: it makes what later runs find made (tfjs's cached scalars).
 */
export async function compareWays<C, R extends { traffic: GpuTraffic }>(
  cases: C[],
  run: (c: C, way: Way) => Promise<R>,
): Promise<{ c: C; fused: R; composite: R; own: { fused: Traffic; composite: Traffic } }[]> {
  const results = [];
  for (const [i, c] of [cases[0]!, ...cases].entries()) {
    const identity = (await run(c, 'identity')).traffic;
    const [fused, composite] = [await run(c, 'fused'), await run(c, 'composite')];
    if (i === 0) continue;
    const own = (t: GpuTraffic) => ({ dispatches: t.dispatches - identity.dispatches, uploads: t.uploads - identity.uploads });
    results.push({ c, fused, composite, own: { fused: own(fused.traffic), composite: own(composite.traffic) } });
  }
  return results;
}

/** A kernel's own dispatches and uploads. */
export interface Traffic {
  dispatches: number;
  uploads: number;
}
