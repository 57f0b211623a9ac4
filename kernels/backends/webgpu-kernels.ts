// Our WGSL kernels, registered on the webgpu backend in one place (kernels/backends/backend.ts when the
// backend starts; the webgpu tests' helpers).
import { registerWebgpuAttentionSoftmax } from '../ops/attention-softmax';
import { registerWebgpuDropoutMask } from '../adapter/dropout';
import { registerWebgpuAdapterKernels } from '../adapter/fused-adapter';
import { registerWebgpuQuantKernels } from '../base/webgpu-quant';
import { registerWebgpuGelu } from '../ops/gelu';
import { registerWebgpuLayerNorm } from '../ops/layer-norm';
import { registerWebgpuRmsNorm } from '../ops/rms-norm';
import { registerWebgpuRope } from '../ops/rope';
import { registerWebgpuSwiglu } from '../ops/swiglu';
import type { WebgpuUtil } from './webgpu-program';

/** Registers every kernel of ours on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuKernels(util: WebgpuUtil): void {
  registerWebgpuAttentionSoftmax(util);
  registerWebgpuDropoutMask(util);
  registerWebgpuAdapterKernels(util);
  registerWebgpuGelu(util);
  registerWebgpuLayerNorm(util);
  registerWebgpuQuantKernels(util);
  registerWebgpuRmsNorm(util);
  registerWebgpuRope(util);
  registerWebgpuSwiglu(util);
}
