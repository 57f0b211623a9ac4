// Type-checks each runtime with its own tsconfig, so that the compiler keeps them apart:
// no 'vscode' outside extension/, no Node types in kernels/ or webview/; the browser tests get
// DOM types (for code that runs in the page) on top of Node's.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const projects = ['protocol', 'kernels', 'server', 'extension', 'webview', 'bench', 'test', 'test/browser']
  .map((dir) => `${dir}/tsconfig.json`)
  .filter((file) => existsSync(file));
let failed = false;
for (const project of projects) {
  try {
    execFileSync(process.execPath, [tsc, '-p', project], { stdio: 'inherit' });
    console.log(`typecheck ${project}: ok`);
  } catch {
    console.error(`typecheck ${project}: FAILED`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
