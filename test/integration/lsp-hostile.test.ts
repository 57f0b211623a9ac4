// The built language server (dist/server.js) driven over stdio with requests no editor sends:
// params of the wrong type or shape, paths outside the workspace, a FIFO where a file belongs.
// Each is refused at once in one line that says which key and why; nothing outside the
// workspace is read (a canary file's content never appears), no trainer starts, and the server
// keeps answering.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DidChangeWorkspaceFoldersNotification, ErrorCodes, HoverRequest, LSPErrorCodes, ResponseError, type MessageConnection } from 'vscode-languageserver-protocol/node';
import { estimateRequest, listJobsRequest, listRunsRequest, runDataRequest, startTrainingRequest } from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';

const CANARY = 'canary-7d41e9-must-never-be-shown';

describe('language server: hostile requests', { skip: existsSync(SERVER) ? false : `${SERVER} is not built; run npm run build` }, () => {
  let dir: string;
  let workspace: string;
  let outside: string;
  let client: LspClient;

  /** The request's error: it must be refused, in one line, without the canary. */
  async function refusal(method: string, params: unknown): Promise<ResponseError<unknown>> {
    try {
      await client.connection.sendRequest(method, params);
    } catch (error) {
      assert.ok(error instanceof ResponseError, String(error));
      assert.ok(!error.message.includes('\n'), error.message);
      assert.ok(!error.message.includes(CANARY), error.message);
      assert.ok(!/\n\s+at /.test(JSON.stringify(error.data ?? '')), 'no stack trace');
      return error;
    }
    return assert.fail(`${method} ${JSON.stringify(params)} was answered`);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-lsp-hostile-'));
    [workspace, outside] = [join(dir, 'workspace'), join(dir, 'outside')];
    await mkdir(join(workspace, 'runs', 'fifo-run'), { recursive: true });
    await mkdir(join(outside, 'run'), { recursive: true });
    await writeFile(join(outside, 'passwd'), `${CANARY}:x:0:0:root:/root:/bin/bash\n`);
    await writeFile(join(outside, 'run', 'config.yaml'), 'configPath: /x\n');
    await writeFile(join(outside, 'run', 'metrics.jsonl'), `{"step": 1, "kind": "train", "note": "${CANARY}"}\n`);
    await writeFile(join(workspace, 'runs', 'fifo-run', 'config.yaml'), 'configPath: /x\n');
    execFileSync('mkfifo', [join(workspace, 'runs', 'fifo-run', 'metrics.jsonl'), join(workspace, 'fifo.jsonl')]);
    await writeFile(join(workspace, 'reads-outside.moslora.yaml'), `model: ./nowhere\ndata:\n  train: ${join(outside, 'passwd')}\n`);
    await writeFile(join(workspace, 'writes-outside.moslora.yaml'), `model: ./nowhere\ndata:\n  train: t.jsonl\noutput:\n  runs_dir: ../outside/runs\n`);
    await writeFile(join(workspace, 'invalid.moslora.yaml'), 'r: -1\nmodel: ./nowhere\ndata:\n  train: t.jsonl\n');
    client = await LspClient.start(workspace, { capabilities: { workspace: { workspaceFolders: true } } });
  });

  after(async () => {
    await client.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses params of the wrong shape before anything acts on them, and starts no trainer', async () => {
    const uri = pathToFileURL(join(workspace, 'reads-outside.moslora.yaml')).href;
    const cases: [string, unknown, RegExp][] = [
      [startTrainingRequest.method, { configUri: uri, backend: 5 }, /^moslora\/startTraining: startTraining\.backend: expected one of auto, /],
      [startTrainingRequest.method, { configUri: uri, runsDir: '-runs' }, /^moslora\/startTraining: startTraining\.runsDir: expected a folder path, got "-runs"$/],
      [startTrainingRequest.method, { configUri: uri, resumeRunDir: join(workspace, 'runs'), extra: true }, /^moslora\/startTraining: startTraining: unexpected "extra"$/],
      [startTrainingRequest.method, [uri, 'wasm'], /^moslora\/startTraining: startTraining: expected an object$/],
      [runDataRequest.method, { runDir: 42 }, /^moslora\/runData: runData\.runDir: expected a string$/],
      [listRunsRequest.method, { runsDirs: 'runs' }, /^moslora\/listRuns: listRuns\.runsDirs: expected a list$/],
      ['moslora/mergeAdapter', { adapterDir: '--help', outDir: join(workspace, 'merged') }, /^moslora\/mergeAdapter: mergeAdapter\.adapterDir: expected an absolute path, got "--help"$/],
      ['moslora/generate', { modelDir: workspace, prompt: 'hi', maxNewTokens: 1e12 }, /maxNewTokens: expected a whole number from 1 to 4096/],
      ['moslora/cancelTraining', { jobId: '1; rm -rf /' }, /^moslora\/cancelTraining: cancelTraining\.jobId: expected a finite number/],
    ];
    for (const [method, params, expected] of cases) {
      const error = await refusal(method, params);
      assert.equal(error.code, ErrorCodes.InvalidParams, error.message);
      assert.match(error.message, expected);
    }
    // params by position: two values where one object belongs (the connection is vscode-jsonrpc's, which sends them so)
    await assert.rejects((client.connection as unknown as MessageConnection).sendRequest(startTrainingRequest.method, uri, 'wasm'), {
      code: ErrorCodes.InvalidParams,
      message: 'moslora/startTraining: params: expected one object, got 2 values by position',
    });
    assert.deepEqual(await client.connection.sendRequest(listJobsRequest), [], 'no job was queued');
  });

  it('reads and writes nothing outside the workspace folders, and says so', async () => {
    const outsideRun = await refusal(runDataRequest.method, { runDir: join(outside, 'run') });
    assert.equal(outsideRun.message, `moslora/runData: runDir: ${join(outside, 'run')} is outside the workspace folders; the language server reads and writes only there (add its folder to the workspace, or set moslora.runsDirectory)`);
    await refusal(listRunsRequest.method, { runsDirs: [join(workspace, 'runs'), outside] });
    await refusal(runDataRequest.method, { runDir: join(workspace, '..', 'outside', 'run') });
    const passwd = await refusal(estimateRequest.method, { configUri: pathToFileURL(join(outside, 'passwd')).href });
    assert.match(passwd.message, /^moslora\/estimate: configUri: .*passwd is outside the workspace folders/);
    await refusal(startTrainingRequest.method, { configUri: pathToFileURL(join(workspace, 'reads-outside.moslora.yaml')).href, runsDir: outside });
    const relative = await refusal(startTrainingRequest.method, { configUri: pathToFileURL(join(workspace, 'reads-outside.moslora.yaml')).href, runsDir: '../outside/runs' });
    assert.equal(relative.message, `moslora/startTraining: runsDir: ${join(outside, 'runs')} is outside the workspace folders; the language server reads and writes only there (add its folder to the workspace, or set moslora.runsDirectory)`);
    const written = await refusal(startTrainingRequest.method, { configUri: pathToFileURL(join(workspace, 'writes-outside.moslora.yaml')).href });
    assert.match(written.message, /^moslora\/startTraining: output\.runs_dir: .*outside.*runs is outside the workspace folders/);
    const invalid = await refusal(startTrainingRequest.method, { configUri: pathToFileURL(join(workspace, 'invalid.moslora.yaml')).href });
    assert.match(invalid.message, /invalid\.moslora\.yaml:1:4: error: r: /, 'a config that does not validate is refused before a trainer forks');
    await refusal('moslora/exportAdapter', { adapterDir: join(workspace, 'adapter'), outDir: join(outside, 'export') });
    assert.deepEqual(await client.connection.sendRequest(listJobsRequest), []);
  });

  it('a config that names a file outside is estimated without quoting that file', async () => {
    const uri = pathToFileURL(join(workspace, 'reads-outside.moslora.yaml')).href;
    const error = await refusal(estimateRequest.method, { configUri: uri });
    assert.equal(error.code, LSPErrorCodes.RequestFailed);
    assert.match(error.message, /^moslora\/estimate: .*reads-outside\.moslora\.yaml: model: folder not found/);
  });

  it('answers a FIFO where a run file or a dataset belongs instead of waiting on it', async () => {
    const error = await refusal(runDataRequest.method, { runDir: join(workspace, 'runs', 'fifo-run') });
    assert.match(error.message, /metrics\.jsonl: is a FIFO \(named pipe\), not a regular file; a run's records must be a file$/);
    const uri = pathToFileURL(join(workspace, 'fifo.moslora.yaml')).href;
    await client.open(uri, 'model: ./nowhere\ndata:\n  train: fifo.jsonl\n');
    const diagnostics = await client.waitForDiagnostics(uri, (list) => list.some((d) => String(d.message).startsWith('data.train:')), 'the FIFO is named');
    assert.ok(diagnostics.some((d) => d.message === 'data.train: is a FIFO (named pipe), not a regular file; the dataset must be a file'));
    const hover = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri }, position: { line: 0, character: 1 } });
    assert.ok(hover, 'still answering');
  });

  it('follows workspace folders as the editor adds and removes them', async () => {
    const params = { runDir: join(outside, 'run') };
    await refusal(runDataRequest.method, params);
    await client.connection.sendNotification(DidChangeWorkspaceFoldersNotification.type, { event: { added: [{ uri: pathToFileURL(outside).href, name: 'outside' }], removed: [] } });
    const data = await client.connection.sendRequest(runDataRequest, params);
    assert.equal(data.metrics.length, 1);
    await client.connection.sendNotification(DidChangeWorkspaceFoldersNotification.type, { event: { added: [], removed: [{ uri: pathToFileURL(outside).href, name: 'outside' }] } });
    await refusal(runDataRequest.method, params);
  });
});
