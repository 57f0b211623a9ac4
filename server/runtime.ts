import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { selectBackend, type BackendChoice, type BackendPreference } from '../kernels/backend';
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

export function describeChoice(choice: BackendChoice): string {
  const lines = [`backend: ${choice.backend} — ${choice.device}`];
  for (const { backend, reason } of choice.skipped) lines.push(`  skipped ${backend}: ${reason}`);
  return lines.join('\n');
}
