// Bundles every runtime entry point with esbuild; `tsc` only type-checks (scripts/typecheck.mjs).
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const watch = process.argv.includes('--watch');
const outdir = 'dist';

// Loaded from node_modules at run time, never bundled: native code, or optional installs.
const nodeExternals = ['vscode', 'webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

const nodeEntries = [
  { in: 'extension/extension.ts', out: 'extension' },
  { in: 'server/server.ts', out: 'server' },
  { in: 'server/cli.ts', out: 'cli' },
  { in: 'bench/main.ts', out: 'bench' },
];

const options = {
  entryPoints: nodeEntries,
  outdir,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  external: nodeExternals,
  // tfjs packages register their backends and kernels as side effects of their ESM entries
  // (listed in their "sideEffects"); their CommonJS "main" builds are not, and would be dropped.
  mainFields: ['module', 'main'],
  logLevel: 'warning',
};

// The wasm backend loads its .wasm binaries from beside the bundle (kernels/backend.ts).
mkdirSync(outdir, { recursive: true });
const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
for (const file of readdirSync(wasmDir).filter((name) => name.endsWith('.wasm'))) {
  cpSync(join(wasmDir, file), join(outdir, file));
}

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log('esbuild: watching');
} else {
  await esbuild.build(options);
  console.log(`esbuild: built ${nodeEntries.map((e) => e.out).join(', ')} into ${outdir}/`);
}
