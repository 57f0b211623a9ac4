// What our WGSL kernels share: the parts of @tensorflow/tfjs-backend-webgpu they use, the
// element-per-invocation program most of them are, and their registration on the backend.
import * as tf from '@tensorflow/tfjs-core';

/** What of @tensorflow/tfjs-backend-webgpu's `webgpu_util` the kernels use. */
export interface WebgpuUtil {
  flatDispatchLayout(shape: number[]): { x: number[] };
  computeDispatch(layout: { x: number[] }, outputShape: number[], workgroupSize?: [number, number, number]): [number, number, number];
}

/** A program's uniform value, as WebGPUBackend.runWebGPUProgram takes it. */
export interface Uniform {
  type: string;
  data: number[];
}

/** The WebGPU backend's side of its programs (WebGPUBackend.runWebGPUProgram). */
interface WebgpuBackend {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms: Uniform[]): tf.TensorInfo;
}

/**
 * A program with an invocation per output element: `body` (WGSL) runs for each `index` below the
 * output's size, after `declarations` (WGSL functions it calls). `uniforms` declares the
 * program's own uniforms, read as `uniforms.<name>`; each input is read as `<name>[i]`.
 */
export function elementwiseProgram(
  util: WebgpuUtil,
  program: { key: string; variableNames: string[]; shape: number[]; uniforms?: string; declarations?: string; body: string },
) {
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(program.shape);
  return {
    variableNames: program.variableNames,
    outputShape: program.shape,
    shaderKey: program.key,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, program.shape, workgroupSize),
    workgroupSize,
    size: true,
    ...(program.uniforms ? { uniforms: program.uniforms } : {}),
    getUserCode: () => `
      ${program.declarations ?? ''}
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${program.body}
        }
      }`,
  };
}

/** What a kernel runs: its program, the program's inputs in its variables' order, and its uniform values. */
export interface ProgramRun {
  program: object;
  inputs: tf.TensorInfo[];
  uniforms: Uniform[];
}

/** Registers a float32 kernel on the webgpu backend (once) that runs the program `run` makes from the kernel's inputs and attributes. */
export function registerWebgpuProgram<A>(kernelName: string, run: (inputs: Record<string, tf.TensorInfo>, attrs: A) => ProgramRun): void {
  if (tf.getKernel(kernelName, 'webgpu')) return;
  tf.registerKernel({
    kernelName,
    backendName: 'webgpu',
    kernelFunc: ({ backend, inputs, attrs }) => {
      const { program, inputs: programInputs, uniforms } = run(inputs as Record<string, tf.TensorInfo>, attrs as unknown as A);
      return (backend as unknown as WebgpuBackend).runWebGPUProgram(program, programInputs, 'float32', uniforms);
    },
  });
}
