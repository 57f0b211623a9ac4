// The editor's requests as anything on the server's stdio may send them: every custom method's
// params checked for exact keys, types and limits (protocol/editor.ts), and every path they name
// kept inside the workspace's folders and the runs folder, links resolved (server/workspace.ts).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  PARAM_LIMITS,
  parseCancelTrainingParams,
  parseCombineParams,
  parseEstimateParams,
  parseExportParams,
  parseGenerateParams,
  parseListRunsParams,
  parseMergeParams,
  parseRunDataParams,
  parseStartTrainingParams,
} from '../../protocol/editor';
import { WorkspaceRoots } from '../../server/workspace';

const refusal = (result: { ok: boolean; error?: string }) => (result.ok ? 'accepted' : result.error);

describe("the editor's request params", () => {
  it('accept what the extension sends', () => {
    assert.deepEqual(parseStartTrainingParams({ configUri: 'file:///w/a.moslora.yaml', backend: 'wasm', runsDir: '/w/runs' }), {
      ok: true,
      message: { configUri: 'file:///w/a.moslora.yaml', backend: 'wasm', runsDir: '/w/runs' },
    });
    assert.ok(parseListRunsParams({ runsDirs: ['/w/runs', 'C:\\w\\runs'] }).ok);
    assert.ok(parseCombineParams({ adapterDirs: ['/w/a', '/w/b'], method: 'svd', weights: [1, -0.5], rank: 8, outDir: '/w/c' }).ok);
    assert.ok(parseGenerateParams({ modelDir: '/m', adapterDir: '/w/a', prompt: '-rf /', maxNewTokens: 32 }).ok, 'a prompt is text, whatever it starts with');
  });

  it('refuse wrong types, naming the key', () => {
    assert.equal(refusal(parseStartTrainingParams({ configUri: 42 })), 'startTraining.configUri: expected a string');
    assert.equal(refusal(parseStartTrainingParams({ configUri: 'file:///w/a.yaml', backend: 'cuda' })), 'startTraining.backend: expected one of auto, tensorflow, webgpu, wasm, cpu');
    assert.equal(refusal(parseCancelTrainingParams({ jobId: '1' })), 'cancelTraining.jobId: expected a finite number, got "1"');
    assert.equal(refusal(parseCancelTrainingParams({ jobId: 1.5 })), `cancelTraining.jobId: expected a whole number from 1 to ${PARAM_LIMITS.jobId}, got 1.5`);
    assert.equal(refusal(parseMergeParams({ adapterDir: '/w/a', outDir: '/w/m', force: 'yes' })), 'mergeAdapter.force: expected true or false');
    assert.equal(refusal(parseRunDataParams(['/w/runs/a'])), 'runData: expected an object');
    assert.equal(refusal(parseRunDataParams(null)), 'runData: expected an object');
  });

  it('refuse missing and extra keys: nothing rides along unchecked', () => {
    assert.equal(refusal(parseEstimateParams({})), 'estimate: missing "configUri"');
    assert.equal(refusal(parseExportParams({ adapterDir: '/w/a', outDir: '/w/e', replace: true })), 'exportAdapter: unexpected "replace"');
    assert.deepEqual(parseExportParams({ adapterDir: '/w/a', outDir: '/w/e', force: true }), { ok: true, message: { adapterDir: '/w/a', outDir: '/w/e', force: true } });
    assert.equal(refusal(parseExportParams({ adapterDir: '/w/a', outDir: '/w/e', force: 1 })), 'exportAdapter.force: expected true or false');
    assert.equal(refusal(parseRunDataParams(JSON.parse('{"runDir": "/w/r", "__proto__": {"x": 1}}'))), 'runData: unexpected "__proto__"');
  });

  it('refuse relative paths and values a command line would read as options', () => {
    assert.equal(refusal(parseRunDataParams({ runDir: 'runs/a' })), 'runData.runDir: expected an absolute path, got "runs/a"');
    assert.equal(refusal(parseStartTrainingParams({ configUri: 'file:///w/a.yaml', runsDir: '--force' })), 'startTraining.runsDir: expected a folder path, got "--force"');
    assert.ok(parseStartTrainingParams({ configUri: 'file:///w/a.yaml', runsDir: '../runs' }).ok, 'a relative runs folder is resolved by the server, against the workspace');
    assert.equal(refusal(parseMergeParams({ adapterDir: '--force', outDir: '/w/m' })), 'mergeAdapter.adapterDir: expected an absolute path, got "--force"');
    assert.equal(refusal(parseExportParams({ adapterDir: '/w/a\0/x', outDir: '/w/e' })), 'exportAdapter.adapterDir: expected an absolute path, got "/w/a\\u0000/x"');
    assert.equal(refusal(parseEstimateParams({ configUri: '/w/a.yaml' })), 'estimate.configUri: expected a URI (file:///…), got "/w/a.yaml"');
  });

  it('refuse what is past the limits', () => {
    assert.equal(refusal(parseRunDataParams({ runDir: `/${'a'.repeat(PARAM_LIMITS.pathLength)}` })), `runData.runDir: longer than ${PARAM_LIMITS.pathLength} characters (${PARAM_LIMITS.pathLength + 1})`);
    assert.equal(refusal(parseListRunsParams({ runsDirs: Array(PARAM_LIMITS.runsDirs + 1).fill('/w') })), `listRuns.runsDirs: expected 0 to ${PARAM_LIMITS.runsDirs} entries, got ${PARAM_LIMITS.runsDirs + 1}`);
    assert.equal(refusal(parseCombineParams({ adapterDirs: ['/w/a'], method: 'cat', outDir: '/w/c' })), `combineAdapters.adapterDirs: expected 2 to ${PARAM_LIMITS.adapters} entries, got 1`);
    assert.equal(refusal(parseCombineParams({ adapterDirs: ['/w/a', '/w/b'], method: 'cat', weights: [1], outDir: '/w/c' })), 'combineAdapters.weights: expected 2 to 2 entries, got 1');
    assert.equal(refusal(parseCombineParams({ adapterDirs: ['/w/a', '/w/b'], method: 'cat', weights: [1, 1e300], outDir: '/w/c' })), 'combineAdapters.weights[1]: expected a weight from -1000000 to 1000000, got 1e+300');
    assert.equal(refusal(parseGenerateParams({ modelDir: '/m', prompt: 'x'.repeat(PARAM_LIMITS.promptLength + 1), maxNewTokens: 1 })), `generate.prompt: longer than ${PARAM_LIMITS.promptLength} characters (${PARAM_LIMITS.promptLength + 1})`);
    assert.equal(refusal(parseGenerateParams({ modelDir: '/m', prompt: 'x', maxNewTokens: 1e9 })), `generate.maxNewTokens: expected a whole number from 1 to ${PARAM_LIMITS.maxNewTokens}, got 1000000000`);
  });
});

describe('paths a request names stay in the workspace', () => {
  let dir: string;
  let workspace: string;
  let runs: string;
  let outside: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-roots-'));
    [workspace, runs, outside] = [join(dir, 'workspace'), join(dir, 'central-runs'), join(dir, 'outside')];
    await mkdir(join(workspace, 'runs', 'a'), { recursive: true });
    await mkdir(runs);
    await mkdir(outside);
    await symlink(outside, join(workspace, 'escape'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('takes paths inside a workspace folder or the runs folder, existing or to be created', async () => {
    const roots = new WorkspaceRoots();
    roots.setFolders([workspace]);
    roots.setRunsDirectory(runs);
    assert.equal(await roots.confine(join(workspace, 'runs', 'a'), 'runDir'), join(workspace, 'runs', 'a'));
    assert.equal(await roots.confine(join(workspace, 'merged', 'new'), 'outDir'), join(workspace, 'merged', 'new'));
    assert.equal(await roots.confine(join(runs, 'b'), 'runDir'), join(runs, 'b'));
    assert.equal(await roots.confine(workspace, 'runsDirs[0]'), workspace);
  });

  it('refuses a path outside, through "..", or through a link that leads out', async () => {
    const roots = new WorkspaceRoots();
    roots.setFolders([workspace]);
    await assert.rejects(roots.confine('/etc', 'runDir'), {
      message: 'runDir: /etc is outside the workspace folders; the language server reads and writes only there (add its folder to the workspace, or set moslora.runsDirectory)',
    });
    await assert.rejects(roots.confine(join(workspace, '..', 'outside'), 'outDir'), /^PathRefused: outDir: .* is outside the workspace folders/);
    await assert.rejects(roots.confine(join(workspace, 'escape', 'new'), 'outDir'), /is outside the workspace folders/);
    await assert.rejects(roots.confine(`${workspace}-sibling`, 'runDir'), /is outside the workspace folders/, 'a folder whose name starts with the root is not inside it');
  });

  it('follows the workspace folders as they change, and the runs folders of its jobs', async () => {
    const roots = new WorkspaceRoots();
    await assert.rejects(roots.confine(join(outside, 'x'), 'runDir'), /no workspace folder is open/);
    roots.changeFolders([outside], []);
    assert.equal(await roots.confine(join(outside, 'x'), 'runDir'), join(outside, 'x'));
    roots.changeFolders([], [outside]);
    await assert.rejects(roots.confine(join(outside, 'x'), 'runDir'), /no workspace folder is open/);
    roots.setRunsDirectory('relative/runs');
    assert.deepEqual(roots.roots, [], 'a relative runs folder is no root while no folder is open');
    assert.throws(() => roots.resolve('runs', 'runsDir'), /^PathRefused: runsDir: runs is relative, and no workspace folder is open/);
  });

  it("resolves a relative path against the workspace folder that holds the config, never the server's working directory", () => {
    const roots = new WorkspaceRoots();
    roots.setFolders([workspace, outside]);
    roots.setRunsDirectory('central');
    assert.deepEqual(roots.roots, [workspace, outside, join(workspace, 'central')]);
    assert.equal(roots.resolve('runs', 'runsDir', join(outside, 'a.moslora.yaml')), join(outside, 'runs'));
    assert.equal(roots.resolve('runs', 'runsDir'), join(workspace, 'runs'));
    assert.equal(roots.resolve(runs, 'runsDir'), runs);
  });
});
