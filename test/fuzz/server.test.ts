// The built language server (dist/server.js) driven over stdio as an editor drives it, with
// seeded hostile input: adapter configs (catastrophic regular expressions, huge numbers, deep
// nesting, aliases, 10 MB files), a model's config.json and safetensors headers, tokenizer files,
// datasets, and custom requests whose params lead out of the workspace. For every case: the
// server stays up, every request is answered within ANSWER_MS, every refusal is one line that
// says where and why, no stack trace reaches the user, and nothing outside the workspace is read
// (access times of a folder beside it) or written. A case answered late is probed once more, so
// that a loaded machine's moment is not a hang. MOSLORA_FUZZ_SEED replays another seed.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  CodeLensRequest,
  CompletionRequest,
  DidCloseTextDocumentNotification,
  HoverRequest,
  ResponseError,
  type Diagnostic,
  type MessageConnection,
} from 'vscode-languageserver-protocol/node';
import {
  cancelTrainingRequest,
  combineAdaptersRequest,
  estimateRequest,
  exportAdapterRequest,
  generateRequest,
  listJobsRequest,
  listRunsRequest,
  mergeAdapterRequest,
  runDataRequest,
  startTrainingRequest,
} from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';
import { HOSTILE_VALUES, int, mutateJson, mutateSafetensors, pick, seeded, type Mutated, type Random } from './mutate';
import { HOSTILE_PARAMS, hostilePaths, hostileUris, mutateConfig, mutateDataset, mutateModelConfig, mutateTokenizer } from './mutate-server';

/** Seeded cases per family. */
const CASES = 200;
/** The longest any request may wait for its answer, and a config for its diagnostics (issue 23). */
const ANSWER_MS = 1000;
const SEED = process.env.MOSLORA_FUZZ_SEED ?? 'moslora-server-fuzz-1';
const CANARY = 'canary-3f9a0c-outside-the-workspace';
const ROOT = join(__dirname, '..', '..');
const TINY_MODEL = join(ROOT, 'examples', 'tiny-model');
const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

/** A request or a config's diagnostics that took longer than ANSWER_MS. */
class Late extends Error {}

/** What a user must never see: a JS stack frame, an engine's own error, or the catch-all for a bug. */
const NEVER_SHOWN = [
  /\n\s+at /,
  /\bat \S+ \(\S+:\d+:\d+\)/,
  /\b(TypeError|RangeError|ReferenceError|InternalError): /,
  /Maximum call stack/,
  /Cannot read propert/,
  /is not a function/,
  /is not iterable/,
  /Invalid string length/,
  /could not check this config/,
  /\[object Object\]/,
  new RegExp(CANARY),
];

const BASE_CONFIG = {
  model: './model',
  method: 'moslora',
  r: 8,
  alpha: 16,
  target_modules: ['q_proj', 'v_proj'],
  data: { train: 'train.jsonl', format: 'completion', max_length: 32 },
  training: { max_steps: 10, batch_size: 4 },
  output: { runs_dir: 'runs' },
};

describe('language server under seeded hostile input', { skip: existsSync(SERVER) ? false : `${SERVER} is not built; run npm run build` }, () => {
  let dir: string;
  let workspace: string;
  let outside: string;
  let base: string;
  let client: LspClient;
  let dataset: string[];
  let modelConfig: Record<string, unknown>;
  let tokenizer: string;
  let safetensors: Buffer;
  /** Whether reading a file here updates its access time (not on a noatime mount). */
  let atimeWorks = false;
  const OLD = new Date('2001-01-01T00:00:00Z');
  let slowest = { ms: 0, what: '' };

  /** The outside folder's layout, written by `before`: each folder and what it holds. */
  const KNOWN_OUTSIDE = new Map<string, string[]>();
  /** Every entry under `outside` by lstat, which reads no content: access time, modification time, size. */
  async function outsideState(): Promise<Map<string, string>> {
    const state = new Map<string, string>();
    for (const [folder, names] of KNOWN_OUTSIDE) {
      for (const path of [folder, ...names.map((name) => join(folder, name))]) {
        const info = await lstat(path);
        state.set(path, `${info.atimeMs} ${info.mtimeMs} ${info.size}`);
      }
    }
    return state;
  }
  let outsideBefore: Map<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-fuzz-server-'));
    [workspace, outside, base] = [join(dir, 'workspace'), join(dir, 'outside'), join(dir, 'workspace', 'base')];
    await mkdir(join(outside, 'run'), { recursive: true });
    await mkdir(join(outside, 'runs'));
    await writeFile(join(outside, 'passwd'), `${CANARY}:x:0:0:root:/root:/bin/bash\n`);
    await writeFile(join(outside, 'run', 'config.yaml'), `configPath: ${join(workspace, 'c.moslora.yaml')}\n# ${CANARY}\n`);
    await writeFile(join(outside, 'run', 'metrics.jsonl'), `{"step": 1, "kind": "train", "loss": 1, "note": "${CANARY}"}\n`);
    KNOWN_OUTSIDE.set(outside, ['passwd', 'run', 'runs']).set(join(outside, 'run'), ['config.yaml', 'metrics.jsonl']).set(join(outside, 'runs'), []);

    await mkdir(join(base, 'model'), { recursive: true });
    for (const file of MODEL_FILES) await copyFile(join(TINY_MODEL, file), join(base, 'model', file));
    dataset = (await readFile(join(ROOT, 'examples', 'tiny-task', 'train.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, 40);
    await writeFile(join(base, 'train.jsonl'), `${dataset.join('\n')}\n`);
    modelConfig = JSON.parse(await readFile(join(base, 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
    tokenizer = await readFile(join(base, 'model', 'tokenizer.json'), 'utf8');
    safetensors = await readFile(join(base, 'model', 'model.safetensors'));
    await mkdir(join(workspace, 'runs'));
    await symlink(outside, join(workspace, 'escape'));
    await writeFile(join(workspace, 'invalid.moslora.yaml'), 'r: -1\nmodel: ./base/model\ndata:\n  train: base/train.jsonl\n');

    // a read updates the access time of a file whose access time is older than its modification
    const probe = join(dir, 'atime-probe');
    await writeFile(probe, 'x');
    await utimes(probe, OLD, new Date());
    await readFile(probe);
    atimeWorks = (await lstat(probe)).atimeMs > OLD.getTime();
    for (const path of [outside, join(outside, 'passwd'), join(outside, 'run'), join(outside, 'run', 'config.yaml'), join(outside, 'run', 'metrics.jsonl'), join(outside, 'runs')]) {
      await utimes(path, OLD, (await lstat(path)).mtime);
    }
    outsideBefore = await outsideState();
    client = await LspClient.start(workspace, { capabilities: { workspace: { workspaceFolders: true } } });
  });

  after(async () => {
    await client?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** `promise`, or a Late naming `what` when it takes longer than ANSWER_MS. */
  async function within<T>(promise: Promise<T>, what: string): Promise<T> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Late(`${what}: no answer within ${ANSWER_MS} ms (server stderr: ${client.stderr.slice(-2000)})`)), ANSWER_MS);
    });
    try {
      return await Promise.race([promise, late]);
    } finally {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (ms > slowest.ms) slowest = { ms, what };
    }
  }

  function neverShown(text: string, what: string): void {
    for (const pattern of NEVER_SHOWN) assert.doesNotMatch(text, pattern, `${what}: shows the user ${JSON.stringify(text.slice(0, 600))}`);
  }

  /** A refusal: one line, where (the method, then a key or file) and why, no stack trace, no canary. */
  function checkRefusal(error: unknown, what: string): void {
    assert.ok(error instanceof ResponseError, `${what}: not a JSON-RPC error: ${String(error)}`);
    assert.ok(!error.message.includes('\n'), `${what}: a refusal of several lines: ${JSON.stringify(error.message.slice(0, 600))}`);
    assert.match(error.message, /^moslora\/\w+: \S.*: \S/, `${what}: a refusal that does not say where and why: ${error.message.slice(0, 300)}`);
    neverShown(`${error.message}\n${JSON.stringify(error.data ?? '')}`, what);
  }

  function checkDiagnostics(diagnostics: Diagnostic[], what: string): void {
    for (const d of diagnostics) {
      const message = typeof d.message === 'string' ? d.message : d.message.value;
      assert.ok(message.trim() !== '', `${what}: an empty diagnostic`);
      neverShown(message, what);
    }
  }

  /** A request that may be answered or refused, within ANSWER_MS; a refusal is checked, an answer must not hold the canary. */
  async function ask(method: string, params: unknown, what: string): Promise<unknown> {
    try {
      const result = await within(client.connection.sendRequest(method, params), `${what}: ${method}`);
      neverShown(JSON.stringify(result ?? null), `${what}: ${method}'s answer`);
      return result;
    } catch (error) {
      if (!(error instanceof ResponseError)) throw error;
      checkRefusal(error, `${what}: ${method}`);
      return error;
    }
  }

  let opened = 0;
  /** Opens `text` as a config in `folder`: diagnostics, hover, completion, lenses and the estimate, each within ANSWER_MS. */
  async function probeConfig(folder: string, text: string, what: string): Promise<void> {
    const uri = pathToFileURL(join(folder, `c${++opened}.moslora.yaml`)).href;
    await client.open(uri, text);
    const diagnostics = await within(
      client.waitForDiagnostics(uri, () => true, what),
      `${what}: diagnostics`,
    );
    checkDiagnostics(diagnostics, what);
    const rLine = Math.max(0, text.slice(0, 1_000_000).split('\n').findIndex((line) => line.startsWith('r:')));
    const position = { line: rLine, character: 0 };
    const hover = await within(client.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position }), `${what}: hover`);
    neverShown(JSON.stringify(hover ?? null), `${what}: hover`);
    await within(client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 0 } }), `${what}: completion`);
    await within(client.connection.sendRequest(CodeLensRequest.type, { textDocument: { uri } }), `${what}: code lenses`);
    await ask(estimateRequest.method, { configUri: uri }, what);
    await client.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  }

  /** A case folder holding the base model and dataset (hard links), with `changes` written over them. */
  async function caseFolder(name: string, changes: Record<string, Buffer>): Promise<string> {
    const folder = join(workspace, name);
    await mkdir(join(folder, 'model'), { recursive: true });
    for (const file of [...MODEL_FILES.map((f) => join('model', f)), 'train.jsonl']) {
      if (changes[file]) await writeFile(join(folder, file), changes[file]);
      else await link(join(base, file), join(folder, file));
    }
    return folder;
  }

  /**
   * CASES seeded cases of a family, one after another: `make` draws a case and returns its probe.
   * A case answered late is probed once more: a hang is late again, a moment of a loaded machine's
   * scheduling is not.
   */
  async function family(t: TestContext, name: string, make: (random: Random, i: number) => () => Promise<void>): Promise<void> {
    const random = seeded(`${SEED}/${name}`);
    slowest = { ms: 0, what: '' };
    const late: string[] = [];
    const started = performance.now();
    for (let i = 0; i < CASES; i++) {
      const probe = make(random, i);
      try {
        await probe();
      } catch (error) {
        if (!(error instanceof Late)) throw error;
        late.push(error.message.slice(0, 200));
        await probe();
      }
    }
    t.diagnostic(`${name}: ${CASES} cases in ${((performance.now() - started) / 1000).toFixed(1)} s; slowest answer ${slowest.ms.toFixed(0)} ms (${slowest.what.slice(0, 120)})`);
    for (const what of late) t.diagnostic(`late once, in time when probed again: ${what}`);
    assert.equal(client.child.exitCode, null, `the server exited: ${client.stderr.slice(-2000)}`);
  }

  /** Runs one file family's case in its folder, then removes the folder. */
  function fileCase(name: string, i: number, mutated: Mutated<Buffer>, file: string): () => Promise<void> {
    return async () => {
      await rm(join(workspace, `${name}-${i}`), { recursive: true, force: true });
      const folder = await caseFolder(`${name}-${i}`, { [file]: mutated.value });
      await probeConfig(folder, `${JSON.stringify(BASE_CONFIG)}\n`, `${name} case ${i} (${mutated.what})`);
      await rm(folder, { recursive: true, force: true });
    };
  }

  it('adapter configs: regular expressions, huge numbers, deep nesting, aliases, runs folders outside, 10 MB files', async (t) => {
    const runsDirs = [outside, join(outside, 'run'), join(outside, 'runs'), join(workspace, 'escape'), join(workspace, '..', 'outside'), '../../outside', '/etc', '/proc/self'];
    await family(t, 'configs', (random, i) => {
      const { value, what } = mutateConfig(random, BASE_CONFIG, runsDirs);
      return () => probeConfig(base, value, `configs case ${i} (${what})`);
    });
  });

  it("model config.json: claims the safetensors headers do not back", async (t) => {
    await family(t, 'config.json', (random, i) => fileCase('config-json', i, mutateModelConfig(random, modelConfig), join('model', 'config.json')));
  });

  it('safetensors headers', async (t) => {
    await family(t, 'safetensors', (random, i) => fileCase('safetensors', i, mutateSafetensors(random, safetensors), join('model', 'model.safetensors')));
  });

  it('tokenizer files', async (t) => {
    await family(t, 'tokenizer', (random, i) => fileCase('tokenizer', i, mutateTokenizer(random, tokenizer), join('model', 'tokenizer.json')));
  });

  it('datasets', async (t) => {
    await family(t, 'datasets', (random, i) => fileCase('dataset', i, mutateDataset(random, dataset), 'train.jsonl'));
  });

  it('custom requests whose params lead out of the workspace, or are no params at all', async (t) => {
    const paths = hostilePaths(workspace, outside);
    const uris = hostileUris(workspace, outside);
    const invalidConfig = pathToFileURL(join(workspace, 'invalid.moslora.yaml')).href;
    const configUri = (random: Random) => (random() < 0.3 ? invalidConfig : pick(random, uris));
    const requests: [string, (random: Random) => unknown][] = [
      [startTrainingRequest.method, (r) => ({ configUri: configUri(r), ...(r() < 0.5 ? { runsDir: pick(r, paths) } : {}), ...(r() < 0.3 ? { resumeRunDir: pick(r, paths) } : {}), ...(r() < 0.3 ? { backend: pick(r, ['wasm', 'cuda', 5]) } : {}) })],
      [runDataRequest.method, (r) => ({ runDir: pick(r, paths) })],
      [listRunsRequest.method, (r) => ({ runsDirs: [...(r() < 0.5 ? [join(workspace, 'runs')] : []), pick(r, paths)] })],
      [estimateRequest.method, (r) => ({ configUri: pick(r, uris) })],
      [mergeAdapterRequest.method, (r) => ({ adapterDir: pick(r, paths), outDir: pick(r, paths), ...(r() < 0.5 ? { force: true } : {}) })],
      [exportAdapterRequest.method, (r) => ({ adapterDir: pick(r, paths), outDir: pick(r, paths) })],
      [combineAdaptersRequest.method, (r) => ({ adapterDirs: [pick(r, paths), pick(r, paths)], method: pick(r, ['cat', 'svd', 'x']), outDir: pick(r, paths) })],
      [generateRequest.method, (r) => ({ modelDir: pick(r, paths), prompt: pick(r, ['hi', '--help', '-rf /']), maxNewTokens: pick(r, [1, 8, 1e12, -1]) })],
      [cancelTrainingRequest.method, (r) => ({ jobId: pick(r, [0, -1, 1.5, '1', 2 ** 53, null]) })],
    ];
    const byPosition = client.connection as unknown as MessageConnection;
    await family(t, 'params', (random, i) => {
      const [method, make] = pick(random, requests);
      const kind = int(random, 0, 9);
      let params: unknown = make(random);
      let what = `params case ${i} (${method}`;
      if (kind === 0) {
        params = pick(random, HOSTILE_PARAMS);
        what += `, params ${JSON.stringify(params)?.slice(0, 40)}`;
      } else if (kind <= 2) {
        const mutated = mutateJson(random, params, 2, [...HOSTILE_VALUES, ...paths]);
        params = mutated.value;
        what += `, ${mutated.what}`;
      }
      what += `: ${JSON.stringify(params)?.slice(0, 160)})`;
      if (kind === 3) {
        const second = pick(random, paths);
        return async () => {
          const answer = await within(
            byPosition.sendRequest(method, params, second).then(
              (result) => assert.fail(`${what}: answered params by position with ${JSON.stringify(result)}`),
              (error: unknown) => error,
            ),
            `${what}: by position`,
          );
          checkRefusal(answer, `${what}: by position`);
        };
      }
      return async () => {
        const answer = await ask(method, params, what);
        // cancelTraining of no job is an answer (false), and a list of only the workspace's runs folder is one (no runs)
        if (!(answer instanceof ResponseError)) assert.ok(method === cancelTrainingRequest.method || method === listRunsRequest.method, `${what}: answered ${JSON.stringify(answer)?.slice(0, 200)}`);
      };
    });
    assert.deepEqual(await client.connection.sendRequest(listJobsRequest), [], 'no trainer was started');
  });

  it('the server is still up and answering; nothing outside the workspace was read or written', async (t) => {
    await probeConfig(workspace, `model: ./base/model\ndata:\n  train: base/train.jsonl\n`, 'the last config');
    assert.equal(client.child.exitCode, null);
    neverShown(client.stderr, 'the server stderr');
    const after = await outsideState();
    if (!atimeWorks) t.diagnostic(`access times are not kept here (a noatime mount): reads outside are not checked, only writes`);
    for (const [path, state] of outsideBefore) {
      const [atime, ...rest] = state.split(' ');
      const [atimeAfter, ...restAfter] = after.get(path)!.split(' ');
      assert.deepEqual(restAfter, rest, `${path} was written`);
      if (atimeWorks) assert.equal(atimeAfter, atime, `${path} was read`);
    }
    for (const [folder, names] of KNOWN_OUTSIDE) assert.deepEqual((await readdir(folder)).sort(), [...names].sort(), `${folder} holds only what the test wrote`);
  });
});
