import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { selectBackend } from '../kernels/backends/backend';
import { type BackendChoice, type BackendPreference } from '../protocol/backends';
import type { ProductEngine } from '../kernels/backends/mlas-matmul';
import { probeWebgpu } from './webgpu-probe';

/**
 * The folder holding the wasm backend's binaries when running from the esbuild bundle
 * (scripts/build.mjs copies them beside it); undefined when running from source, where
 * tfjs-backend-wasm finds its own.
 */
function bundledWasmPaths(): string | undefined {
  const hasWasm = existsSync(__dirname) && readdirSync(__dirname).some((file) => file.endsWith('.wasm'));
  return hasWasm ? join(__dirname, '/') : undefined;
}

/**
 * onnxruntime-node (the wasm backend's products) starts Microsoft's telemetry SDK with its
 * environment unless ORT_DISABLE_TELEMETRY is set: every process that loads it then leaves an empty
 * /tmp/mat-debug-<pid>.log and queues events in ~/.cache/Microsoft/DeveloperTools/, and the SDK,
 * reading the process's command line as it starts, overflows the native stack on one of many
 * thousands of words (a long `generate --prompt`): a segmentation fault before any output.
 * Set before any backend starts; worker threads and child processes inherit it.
 */
function disableOnnxruntimeTelemetry(): void {
  process.env.ORT_DISABLE_TELEMETRY = '1';
}

/** The backend preferred, started as training starts it; dawnFlags: Dawn's options (BackendOptions.dawnFlags). */
export function startBackend(preference: BackendPreference, dawnFlags: readonly string[] = []): Promise<BackendChoice> {
  disableOnnxruntimeTelemetry();
  const wasmPaths = bundledWasmPaths();
  return selectBackend(preference, { probeWebgpu: () => probeWebgpu(dawnFlags), dawnFlags, ...(wasmPaths ? { wasmPaths } : {}) });
}

let expectedProducts: ProductEngine | undefined;

/**
 * What the wasm backend will multiply with, known without starting it: MLAS where onnxruntime-node
 * and its native binding for this platform are installed (kernels/backends/mlas-matmul.ts), else XNNPACK.
 * For the language server's memory estimate, which runs before any backend does, on every
 * validation of a config: looked up once.
 */
export function expectedWasmProducts(): ProductEngine {
  if (!expectedProducts) {
    try {
      createRequire(__filename).resolve(`onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`);
      expectedProducts = 'mlas';
    } catch {
      expectedProducts = 'xnnpack';
    }
  }
  return expectedProducts;
}

export function describeChoice(choice: BackendChoice): string {
  const lines = [`backend: ${choice.backend} — ${choice.device}`];
  for (const { backend, reason } of choice.skipped) lines.push(`  skipped ${backend}: ${reason}`);
  return lines.join('\n');
}
