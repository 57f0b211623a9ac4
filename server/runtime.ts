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

/** The backend preferred, started as training starts it; dawnFlags: Dawn's options (BackendOptions.dawnFlags). */
export function startBackend(preference: BackendPreference, dawnFlags: readonly string[] = []): Promise<BackendChoice> {
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
