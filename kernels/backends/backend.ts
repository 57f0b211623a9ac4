// Which TensorFlow.js backend a process computes on (tensorflow, webgpu, wasm, cpu): starting
// one, `auto`'s choice with the reasons for each one passed over, and our kernels installed on it.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone has no gradients registered (the @tensorflow/tfjs umbrella package does this).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { watchGpuErrors } from './gpu-errors';
import { installMlasProducts, loadMlasLibrary, ORT_PACKAGE } from './mlas-matmul';
import { installWasmKernels } from './wasm-kernels';
import { registerWebgpuKernels } from './webgpu-kernels';
import { BACKEND_PREFERENCES, BACKENDS, type BackendChoice, type BackendName, type BackendPreference } from '../../protocol/backends';

// Production mode: no "install the node backend" advert on the cpu backend. We choose the
// backend ourselves and report why (selectBackend).
tf.env().set('PROD', true);

/** What a look for a WebGPU adapter outside this process found (server/webgpu-probe.ts). */
export type WebgpuProbe = { adapter: { name: string; software: boolean } } | { reason: string };

export interface BackendOptions {
  /** Folder (ending in '/') holding tfjs-backend-wasm's *.wasm files, for bundled builds. */
  wasmPaths?: string;
  /** Looks for a WebGPU adapter before Dawn is loaded here; without it, Dawn is asked here. */
  probeWebgpu?: () => Promise<WebgpuProbe>;
  /** Dawn's own options, as `webgpu`'s create() takes them: ['backend=null'] is its null device, which computes nothing (the benchmarks' host-time floor). */
  dawnFlags?: readonly string[];
}

export class BackendUnavailableError extends Error {
  constructor(
    readonly backend: BackendName,
    readonly reason: string,
  ) {
    super(`backend '${backend}' is not available: ${reason}`);
    this.name = 'BackendUnavailableError';
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error);
}

function notInstalled(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** Why an optional package could not be used: not installed, or its own error. */
function whyNotLoaded(name: string, error: unknown): string {
  return notInstalled(error) ? `${name} is not installed` : `${name}: ${message(error)}`;
}

// Module names held in variables so that bundlers leave these optional imports to run time.
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];
const WEBGPU_PACKAGE = 'webgpu';

async function initTensorflow(): Promise<string> {
  const failures: string[] = [];
  for (const name of TFJS_NODE_PACKAGES) {
    try {
      await import(name);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('libtensorflow failed to initialise');
      return `${name} (libtensorflow)`;
    } catch (error) {
      failures.push(whyNotLoaded(name, error));
    }
  }
  throw new Error(
    `${failures.join(', ')} (optional: their install downloads libtensorflow, which needs internet access and CUDA 11 for the GPU build)`,
  );
}

type WebGpuGlobals = { navigator?: { gpu?: unknown } };

interface WebGpuAdapterInfo {
  description?: string;
  vendor?: string;
  /** A software adapter (SwiftShader, llvmpipe): it runs on the CPU. */
  isFallbackAdapter?: boolean;
}

/** Why webgpu is not used when Dawn finds no adapter and says nothing more. */
export const NO_WEBGPU_ADAPTER = 'Dawn found no GPU adapter (no Vulkan, Metal or D3D12 driver with a usable GPU)';

function softwareRefusal(name: string): Error {
  return new Error(`the only adapter is ${name}, a software one that runs on the CPU, slower there than wasm (backend: webgpu takes it anyway)`);
}

/**
 * Dawn's adapter. A software one is taken only when asked for by name: on the CPU the wasm
 * backend is far faster, but a software adapter runs the webgpu backend's shaders where no
 * GPU is (the tests compare it with wasm on one).
 */
async function initWebgpu(allowSoftware: boolean, { probeWebgpu: probe, dawnFlags = [] }: BackendOptions): Promise<string> {
  if (probe) {
    const found = await probe();
    if ('reason' in found) throw new Error(found.reason);
    if (found.adapter.software && !allowSoftware) throw softwareRefusal(found.adapter.name);
  }
  const { create, globals } = (await import(WEBGPU_PACKAGE)) as {
    create: (flags: string[]) => { requestAdapter(options: { powerPreference: string }): Promise<{ info?: WebGpuAdapterInfo } | null> };
    globals: object;
  };
  const gpu = create([...dawnFlags]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_WEBGPU_ADAPTER);
  const name = adapter.info?.description || adapter.info?.vendor || 'WebGPU adapter';
  const software = adapter.info?.isFallbackAdapter === true;
  if (software && !allowSoftware) throw softwareRefusal(name);
  const g = globalThis as WebGpuGlobals;
  Object.assign(globalThis, globals);
  g.navigator = Object.assign(g.navigator ?? {}, { gpu });
  const { webgpu_util } = await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('the tfjs webgpu backend failed to initialise');
  registerWebgpuKernels(webgpu_util);
  watchGpuErrors((tf.backend() as unknown as { device: Parameters<typeof watchGpuErrors>[0] }).device);
  return software ? `${name} (software, on the CPU)` : name;
}

async function initWasm(options: BackendOptions): Promise<string> {
  if (options.wasmPaths) setWasmPaths(options.wasmPaths);
  installWasmKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  try {
    await installMlasProducts();
    return "CPU (WebAssembly, SIMD; products on onnxruntime's MLAS)";
  } catch (error) {
    return `CPU (WebAssembly, SIMD; products on XNNPACK: ${whyNotLoaded(ORT_PACKAGE, error)})`;
  }
}

async function initCpu(): Promise<string> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend failed to initialise');
  try {
    await loadMlasLibrary();
    return "CPU (plain JavaScript; the frozen weights' products on onnxruntime's MLAS)";
  } catch (error) {
    return `CPU (plain JavaScript; frozen weights as tensors: ${whyNotLoaded(ORT_PACKAGE, error)})`;
  }
}

async function init(backend: BackendName, options: BackendOptions, named: boolean): Promise<string> {
  switch (backend) {
    case 'tensorflow':
      return initTensorflow();
    case 'webgpu':
      return initWebgpu(named, options);
    case 'wasm':
      return initWasm(options);
    case 'cpu':
      return initCpu();
  }
}

/**
 * Makes one backend current. A named backend that cannot start throws with its reason; 'auto'
 * tries tensorflow, webgpu, wasm, cpu in that order and reports why each earlier one was skipped.
 */
export async function selectBackend(preference: BackendPreference, options: BackendOptions = {}): Promise<BackendChoice> {
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(preference)) {
    throw new Error(`backend: unknown value ${JSON.stringify(preference)}; allowed: ${BACKEND_PREFERENCES.join(', ')}`);
  }
  const candidates = preference === 'auto' ? BACKENDS : [preference];
  const skipped: BackendChoice['skipped'] = [];
  for (const backend of candidates) {
    try {
      const device = await init(backend, options, preference !== 'auto');
      return { backend, device, skipped };
    } catch (error) {
      if (preference !== 'auto') throw new BackendUnavailableError(backend, message(error));
      skipped.push({ backend, reason: message(error) });
    }
  }
  throw new Error(`no backend could start: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}
