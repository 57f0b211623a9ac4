// The dependency direction docs/architecture.md draws, read from the source's import statements:
// extension → protocol ← server → engine → models → kernels, webview → protocol, protocol
// imports no implementation, and no file reaches itself through its imports.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(__dirname, '..', '..');
const SOURCE_FOLDERS = ['protocol', 'extension', 'webview', 'server', 'kernels'];

interface SourceFile {
  path: string;
  /** Repository files it imports (relative specifiers, resolved). */
  files: string[];
  /** Packages it imports (bare specifiers), without `node:` built-ins. */
  packages: string[];
}

function sources(): SourceFile[] {
  const paths = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', ...SOURCE_FOLDERS.map((f) => `${f}/*.ts`)], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
  return paths.map((path) => {
    const text = readFileSync(join(ROOT, path), 'utf8');
    const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)].map((m) => m[1]!);
    return {
      path,
      files: specifiers.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(path), s)).split(sep).join('/')),
      packages: specifiers.filter((s) => !s.startsWith('.') && !s.startsWith('node:')),
    };
  });
}

/** The folder a file counts as: its top folder, or server/<sub> inside server/. */
function layer(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'server' && parts.length > 2) return `server/${parts[1]}`;
  return parts[0]!;
}

/** What each folder may import from the repository (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  extension: ['protocol'],
  webview: ['protocol'],
  kernels: ['protocol'],
  'server/formats': ['kernels'],
  'server/models': ['server/formats', 'kernels', 'protocol'],
  'server/config': ['server/models', 'server/formats', 'kernels', 'protocol'],
  'server/engine': ['server/models', 'server/formats', 'server/config', 'kernels', 'protocol', 'server'],
  'server/jobs': ['protocol'],
  'server/lsp': ['server/config', 'server/engine', 'server/models', 'server/formats', 'kernels', 'protocol', 'server'],
  'server/tasks': ['server/config', 'server/engine', 'server/lsp', 'server/ab', 'server/models', 'server/formats', 'protocol'],
  'server/ab': ['server/config', 'server/engine', 'server/jobs', 'server/models', 'protocol', 'server'],
  'server/cli': ['server/ab', 'server/engine', 'server/models', 'server/config', 'server/formats', 'kernels', 'protocol', 'server'],
  server: ['server/engine', 'server/jobs', 'server/lsp', 'server/tasks', 'server/cli', 'kernels', 'protocol'],
};

describe('the dependency direction', () => {
  const files = sources();

  it('finds the source files and their imports', () => {
    assert.ok(files.length > 100, `only ${files.length} source files found`);
    assert.ok(files.some((f) => f.files.includes('protocol/editor')));
  });

  it('each folder imports only the folders below it', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const own = layer(file.path);
      for (const target of file.files) {
        const other = layer(target);
        if (other !== own && !ALLOWED[own]!.includes(other)) wrong.push(`${file.path} imports ${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('protocol/ imports no implementation and no runtime but the protocol package', () => {
    const packages = new Set(files.filter((f) => f.path.startsWith('protocol/')).flatMap((f) => f.packages));
    assert.deepEqual([...packages], ['vscode-languageserver-protocol']);
  });

  it('only extension/ imports vscode; the webview and the kernels import no Node API', () => {
    for (const file of files) {
      if (!file.path.startsWith('extension/')) assert.ok(!file.packages.includes('vscode'), `${file.path} imports vscode`);
    }
    for (const file of files.filter((f) => f.path.startsWith('webview/') || f.path.startsWith('kernels/') || f.path.startsWith('protocol/'))) {
      const text = readFileSync(join(ROOT, file.path), 'utf8');
      assert.ok(!/from\s+'node:/.test(text), `${file.path} imports a Node API`);
    }
  });

  it('no file reaches itself through its imports', () => {
    const graph = new Map(files.map((f) => [f.path.replace(/\.ts$/, ''), f.files]));
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const cycles: string[] = [];
    const visit = (node: string) => {
      state.set(node, 'open');
      stack.push(node);
      for (const next of graph.get(node) ?? []) {
        if (!graph.has(next)) continue;
        if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
        else if (!state.has(next)) visit(next);
      }
      stack.pop();
      state.set(node, 'done');
    };
    for (const node of graph.keys()) if (!state.has(node)) visit(node);
    assert.deepEqual(cycles, []);
  });
});
