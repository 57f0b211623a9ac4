// Packages the extension with vsce for one platform (default: this machine's) into
// moslora-studio-<version>-<target>.vsix. The bundles in dist/ carry every JavaScript dependency;
// what they load at run time beside them is the wasm backend's binaries (dist/*.wasm) and, for
// the WebGPU backend, the `webgpu` package (Dawn for Node): its index.js and the one native
// dawn.node build of the target platform (~20 MB unpacked), which makes the .vsix per platform,
// and, for the wasm backend's products (kernels/backends/mlas-matmul.ts), onnxruntime-node's JavaScript,
// onnxruntime-common's CommonJS build and onnxruntime's native library for the target (~45 MB
// unpacked on linux-x64).
//   node scripts/package.mjs [--target linux-x64|linux-arm64|darwin-x64|darwin-arm64|win32-x64|win32-arm64] [--out FILE.vsix]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const at = args.indexOf('--target');
const target = at >= 0 ? args[at + 1] : `${process.platform}-${process.arch}`;
const TARGETS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64'];
if (!TARGETS.includes(target)) {
  console.error(`package: --target must be one of ${TARGETS.join(', ')}, got ${target}`);
  process.exit(1);
}
// webgpu ships one universal build for both Mac architectures
const dawnDir = `node_modules/webgpu/dist/${target.startsWith('darwin-') ? 'darwin-universal' : target}`;
if (!existsSync(dawnDir)) {
  console.error(`package: ${dawnDir} is missing; is the webgpu package installed?`);
  process.exit(1);
}
for (const file of ['dist/extension.js', 'dist/server.js', 'dist/trainer.js', 'dist/shard-worker.js', 'dist/cli.js', 'dist/webview/panel.js']) {
  if (!existsSync(file)) console.warn(`package: warning: ${file} is missing (npm run build makes it)`);
}

// onnxruntime-node's prebuilt binaries, by Node's platform and arch names
const [ortPlatform, ortArch] = target.split('-');
const ortDir = `node_modules/onnxruntime-node/bin/napi-v6/${ortPlatform}/${ortArch}`;
if (!existsSync(ortDir)) {
  console.error(`package: ${ortDir} is missing; is onnxruntime-node installed (npm ci, with the project's .npmrc)?`);
  process.exit(1);
}

const ignore = [
  readFileSync('.vscodeignore', 'utf8'),
  '# added by scripts/package.mjs for this target:',
  '!node_modules/webgpu/package.json',
  '!node_modules/webgpu/index.js',
  '!node_modules/webgpu/LICENSE.md',
  `!${dawnDir}/**`,
  '!node_modules/onnxruntime-node/package.json',
  '!node_modules/onnxruntime-node/dist/*.js',
  `!${ortDir}/**`,
  '!node_modules/onnxruntime-common/package.json',
  '!node_modules/onnxruntime-common/dist/cjs/**/*.js',
  // says its .js files are CommonJS: the package's own package.json says "type": "module"
  '!node_modules/onnxruntime-common/dist/cjs/package.json',
  '',
].join('\n');
const dir = mkdtempSync(join(tmpdir(), 'moslora-package-'));
const ignoreFile = join(dir, 'vscodeignore');
writeFileSync(ignoreFile, ignore);
const { version } = JSON.parse(readFileSync('package.json', 'utf8'));
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args[outAt + 1] : `moslora-studio-${version}-${target}.vsix`;
const vsce = createRequire(import.meta.url).resolve('@vscode/vsce/vsce');
try {
  // vsce lists production dependencies with `npm list`; the whitelist keeps only the files above
  execFileSync(process.execPath, [vsce, 'package', '--target', target, '--ignoreFile', ignoreFile, '--out', out], { stdio: 'inherit' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`package: ${out}`);
