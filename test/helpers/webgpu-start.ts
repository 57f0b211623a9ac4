// For helpers run on SwiftShader (test/helpers/swiftshader.ts): the webgpu backend on the adapter
// Dawn finds, with our kernels registered as kernels/backend.ts registers them.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { create, globals } from 'webgpu';
import { registerWebgpuKernels } from '../../kernels/webgpu-kernels';

/** dawnFlags: Dawn's options (['backend=null'] for its null device, which computes nothing). */
export async function startWebgpu(dawnFlags: string[] = []): Promise<void> {
  Object.assign(globalThis, globals);
  (globalThis as { navigator?: object }).navigator = { gpu: create(dawnFlags) };
  const { webgpu_util } = await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not start');
  registerWebgpuKernels(webgpu_util);
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
