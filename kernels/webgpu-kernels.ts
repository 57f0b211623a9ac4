// Our WGSL kernels, registered on the webgpu backend in one place (kernels/backend.ts when the
// backend starts; the webgpu tests' helpers).
import { registerWebgpuAttentionSoftmax } from './attention-softmax';
import { registerWebgpuDropoutMask } from './dropout';
import { registerWebgpuAdapterKernels } from './fused-adapter';
import { registerWebgpuGelu } from './gelu';
import { registerWebgpuLayerNorm } from './layer-norm';
import { registerWebgpuRmsNorm } from './rms-norm';
import { registerWebgpuRope } from './rope';
import { registerWebgpuSwiglu } from './swiglu';
import type { WebgpuUtil } from './webgpu-program';

/** Registers every kernel of ours on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuKernels(util: WebgpuUtil): void {
  registerWebgpuAttentionSoftmax(util);
  registerWebgpuDropoutMask(util);
  registerWebgpuAdapterKernels(util);
  registerWebgpuGelu(util);
  registerWebgpuLayerNorm(util);
  registerWebgpuRmsNorm(util);
  registerWebgpuRope(util);
  registerWebgpuSwiglu(util);
}
