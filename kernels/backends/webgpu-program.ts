// What our WGSL kernels share: the parts of @tensorflow/tfjs-backend-webgpu they use, the
// element-per-invocation and row programs they are made of, their registration on the backend,
// and how the models find and run them.
import * as tf from '@tensorflow/tfjs-core';

/** Whether one of our kernels is registered on the current backend (on webgpu: kernels/backends/webgpu-kernels.ts). */
export function ownKernelAvailable(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/** Runs one of our kernels, its attributes a plain object (tfjs types them as a NamedAttrMap). */
export function runOwnKernel<T extends tf.Tensor>(kernelName: string, inputs: tf.NamedTensorMap, attrs: object): T {
  return tf.engine().runKernel(kernelName, inputs, attrs as unknown as tf.NamedAttrMap) as T;
}

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

/**
 * f over the last axis of x as rows [rows, width], with its gradient to x alone: `forward` and
 * `backward` run row kernels on rows. The backward pass gets the rows it keeps (x's, or f's with
 * `keep: 'output'`) and dy's rows.
 */
export function overRows<T extends tf.Tensor>(
  x: T,
  keep: 'input' | 'output',
  forward: (rows: tf.Tensor2D) => tf.Tensor2D,
  backward: (kept: tf.Tensor2D, dy: tf.Tensor2D) => tf.Tensor2D,
): T {
  const width = x.shape[x.rank - 1]!;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const rows = tf.reshape(input, [-1, width]) as tf.Tensor2D;
    const out = forward(rows);
    save([keep === 'input' ? rows : out]);
    return {
      value: tf.reshape(out, input.shape),
      gradFunc: (dy: tf.Tensor, [kept]: tf.Tensor[]) => tf.reshape(backward(kept as tf.Tensor2D, tf.reshape(dy, [-1, width])), input.shape),
    };
  });
  return f(x) as T;
}

/** Threads of a row program's workgroup: a row each, striding over its elements. */
const ROW_GROUP = 64;

/**
 * One reduction of a row program: its threads sum `terms` (one or two WGSL expressions of the
 * element index e and its column j), or take their maximum with `max`, over the row into
 * `total<k>` (a vec2: .x, .y), and `then` (WGSL statements) defines what later phases and the
 * output read from it.
 */
export interface RowPhase {
  terms: [string] | [string, string];
  max?: boolean;
  then?: string;
}

/** The lowest finite float32: where a maximum starts. */
const LOWEST = '-3.4028234663852886e38';

/**
 * A workgroup per row of x [rows, width]: the phases' sums, each met in workgroup memory (a
 * tree, halving) before the next phase reads it, then `finish` (WGSL) writes the row's elements,
 * element e at column j. `uniforms` declares the program's own uniforms (read as `uniforms.<name>`).
 */
export function rowProgram(util: WebgpuUtil, program: { key: string; variableNames: string[]; shape: [number, number]; uniforms?: string; phases: RowPhase[]; finish: string }) {
  const workgroupSize: [number, number, number] = [ROW_GROUP, 1, 1];
  const overRow = (statement: string) => `
        if (live) {
          for (var j = thread; j < width; j = j + ${ROW_GROUP}) {
            let e = row * width + j;
            ${statement}
          }
        }`;
  const phase = ({ terms, max, then }: RowPhase, k: number) => {
    const combine = (a: string, b: string) => (max ? `max(${a}, ${b})` : `${a} + ${b}`);
    const start = max ? LOWEST : '0.0';
    return `
        var sum${k} = vec2<f32>(${start}, ${start});
        ${overRow(`sum${k} = ${combine(`sum${k}`, `vec2<f32>(${terms[0]}, ${terms[1] ?? start})`)};`)}
        partial[thread] = sum${k};
        workgroupBarrier();
        for (var stride = ${ROW_GROUP / 2}; stride > 0; stride = stride / 2) {
          if (thread < stride) {
            partial[thread] = ${combine('partial[thread]', 'partial[thread + stride]')};
          }
          workgroupBarrier();
        }
        let total${k} = partial[0];
        workgroupBarrier();
        ${then ?? ''}`;
  };
  return {
    variableNames: program.variableNames,
    outputShape: program.shape,
    shaderKey: program.key,
    dispatchLayout: util.flatDispatchLayout(program.shape),
    dispatch: util.computeDispatch({ x: [0] }, [program.shape[0] * ROW_GROUP], workgroupSize),
    workgroupSize,
    ...(program.uniforms ? { uniforms: program.uniforms } : {}),
    getUserCode: () => `
      var<workgroup> partial : array<vec2<f32>, ${ROW_GROUP}>;
      fn main(index : i32) {
        let row = index / ${ROW_GROUP};
        let thread = index % ${ROW_GROUP};
        let width = uniforms.xShape[1];
        let live = row < uniforms.xShape[0];
        ${program.phases.map(phase).join('')}
        ${overRow(program.finish)}
      }`,
  };
}
