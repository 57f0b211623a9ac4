// Bundles every runtime entry point with esbuild; `tsc` only type-checks (scripts/typecheck.mjs).
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const watch = process.argv.includes('--watch');
const outdir = 'dist';

// Loaded from node_modules at run time, never bundled: native code, or optional installs.
const nodeExternals = ['vscode', 'webgpu', 'onnxruntime-node', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'];

const nodeEntries = [
  { in: 'extension/extension.ts', out: 'extension' },
  { in: 'server/server.ts', out: 'server' },
  { in: 'server/trainer.ts', out: 'trainer' },
  { in: 'server/engine/shard-worker.ts', out: 'shard-worker' },
  { in: 'server/cli/main.ts', out: 'cli' },
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

// The webview panels: browser code, one IIFE per page (loaded by <script nonce src>), and one
// stylesheet per page with uPlot's CSS bundled in (protocol/webview-page.ts writes the page around them).
// @vscode-elements (Lit) style their shadow roots with constructable stylesheets, which a strict
// CSP allows; nothing injects inline <style> or style="" attributes.
const webviewOutdir = join(outdir, 'webview');
const webviewOptions = {
  entryPoints: [
    { in: 'webview/panel/main.ts', out: 'panel' },
    { in: 'webview/panel/panel.css', out: 'panel' },
  ],
  outdir: webviewOutdir,
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['chrome120'],
  minify: !watch,
  sourcemap: true,
  logLevel: 'warning',
};

// The wasm backend loads its .wasm binaries from beside the bundle (kernels/backends/backend.ts).
mkdirSync(outdir, { recursive: true });
const wasmDir = 'node_modules/@tensorflow/tfjs-backend-wasm/dist';
for (const file of readdirSync(wasmDir).filter((name) => name.endsWith('.wasm'))) {
  cpSync(join(wasmDir, file), join(outdir, file));
}

if (watch) {
  for (const config of [options, webviewOptions]) await (await esbuild.context(config)).watch();
  console.log('esbuild: watching');
} else {
  await Promise.all([esbuild.build(options), esbuild.build(webviewOptions)]);
  console.log(`esbuild: built ${nodeEntries.map((e) => e.out).join(', ')} into ${outdir}/, the panel into ${webviewOutdir}/`);
}
