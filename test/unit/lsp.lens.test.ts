// The code lenses above a config (server/lsp/lens.ts), on run folders made here: Train and
// Estimate, then Open panel and Merge for the newest run, looked for in the config's or the
// editor's runs folder.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { configLenses } from '../../server/lsp/lens';
import { commandIds } from '../../protocol/commands';

describe('config lenses', () => {
  let dir: string;
  let config: string;
  const commands = async (text: string, live: string[] = []) => (await configLenses(pathToFileURL(config).href, text, null, live)).map((lens) => [lens.command?.command, lens.command?.arguments]);
  /** A run folder; `state`: its summary.json's (none while it trains or after a crash); `checkpoint`: a step-N folder. */
  const run = async (runsDir: string, name: string, configPath: string, seconds: number, adapter = false, state?: 'done' | 'cancelled' | 'failed', checkpoint?: number) => {
    const runDir = join(dir, runsDir, name);
    await mkdir(join(runDir, 'checkpoints'), { recursive: true });
    await writeFile(join(runDir, 'config.yaml'), stringify({ configPath, model: '/m', output: { runs_dir: join(dir, runsDir) } }));
    await utimes(join(runDir, 'config.yaml'), seconds, seconds);
    if (adapter) {
      await mkdir(join(runDir, 'adapter'));
      await writeFile(join(runDir, 'adapter', 'adapter_config.json'), '{}');
    }
    if (state) await writeFile(join(runDir, 'summary.json'), JSON.stringify({ state }));
    if (checkpoint !== undefined) await mkdir(join(runDir, 'checkpoints', `step-${checkpoint}`));
    return runDir;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-lens-'));
    config = join(dir, 'a.moslora.yaml');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('only Train and Estimate before any run of this config', async () => {
    const uri = pathToFileURL(config).href;
    assert.deepEqual(await commands('model: ./m\n'), [
      [commandIds.startTraining, [uri]],
      [commandIds.estimate, [uri]],
    ]);
    await run('runs', 'other-1', join(dir, 'b.moslora.yaml'), 3000, true); // another config's run
    await writeFile(join(dir, 'runs', 'not-a-run'), 'x');
    await mkdir(join(dir, 'runs', 'torn'));
    await writeFile(join(dir, 'runs', 'torn', 'config.yaml'), ':\n  - [unclosed');
    assert.equal((await commands('model: ./m\n')).length, 2);
  });

  it('Open panel and Merge on the newest finished run, naming it; Resume when a newer one stopped with a checkpoint', async () => {
    const older = await run('runs', 'a-old', config, 1000, true, 'done');
    let newest = await run('runs', 'a-new', config, 2000, false);
    // the newest trains (no summary yet) and has no checkpoint: the finished one is shown and merged
    let lenses = await configLenses(pathToFileURL(config).href, 'model: ./m\n');
    assert.deepEqual(
      lenses.slice(2).map((lens) => [lens.command?.title, lens.command?.command, lens.command?.arguments]),
      [
        ['Open panel: a-old', commandIds.openPanel, [older]],
        ['Merge a-old', commandIds.mergeAdapter, [join(older, 'adapter')]],
      ],
    );
    // it stopped with a checkpoint and an adapter: the finished run keeps Merge; the stopped one resumes
    await writeFile(join(newest, 'summary.json'), JSON.stringify({ state: 'cancelled' }));
    await mkdir(join(newest, 'checkpoints', 'step-30'));
    await mkdir(join(newest, 'adapter'));
    await writeFile(join(newest, 'adapter', 'adapter_config.json'), '{}');
    lenses = await configLenses(pathToFileURL(config).href, 'model: ./m\n');
    assert.deepEqual(
      lenses.slice(2).map((lens) => [lens.command?.title, lens.command?.command, lens.command?.arguments]),
      [
        ['Open panel: a-old', commandIds.openPanel, [older]],
        ['Merge a-old', commandIds.mergeAdapter, [join(older, 'adapter')]],
        ['$(debug-continue) Resume a-new', commandIds.resumeTraining, [newest]],
      ],
    );
    assert.equal((await commands('model: ./m\n', [newest])).length, 4, 'no Resume for a run a job trains now');
    // the resumed run finished: it is the one shown and merged, and nothing resumes
    await writeFile(join(newest, 'summary.json'), JSON.stringify({ state: 'done' }));
    assert.deepEqual((await commands('model: ./m\n')).slice(2), [
      [commandIds.openPanel, [newest]],
      [commandIds.mergeAdapter, [join(newest, 'adapter')]],
    ]);
    newest = await run('runs', 'a-failed', config, 3000, false, 'failed');
    assert.deepEqual((await commands('model: ./m\n')).slice(2).map(([command]) => command), [commandIds.openPanel, commandIds.mergeAdapter], 'failed before its first checkpoint: nothing to resume');
  });

  it('Open panel on the newest run when none finished', async () => {
    const alone = join(dir, 'alone.moslora.yaml');
    const crashed = await run('runs', 'alone-1', alone, 4000, false, undefined, 10);
    const lenses = await configLenses(pathToFileURL(alone).href, 'model: ./m\n');
    assert.deepEqual(
      lenses.slice(2).map((lens) => [lens.command?.title, lens.command?.arguments]),
      [
        ['Open panel: alone-1', [crashed]],
        ['$(debug-continue) Resume alone-1', [crashed]],
      ],
    );
  });

  it("looks in the config's output.runs_dir, relative to the config", async () => {
    const elsewhere = await run('elsewhere', 'x', config, 1000, true, 'done');
    assert.deepEqual((await commands('model: ./m\noutput:\n  runs_dir: elsewhere\n')).slice(2), [
      [commandIds.openPanel, [elsewhere]],
      [commandIds.mergeAdapter, [join(elsewhere, 'adapter')]],
    ]);
    assert.equal((await commands('model: ./m\noutput:\n  runs_dir: nowhere\n')).length, 2);
  });

  it("reads a run's config.yaml once per change, and passes over one too large or too odd to be a run's", async () => {
    const runDir = await run('cached', 'c', config, 1000, false);
    const file = join(runDir, 'config.yaml');
    const other = join(dir, 'b.moslora.yaml'); // as long as `config`, so the file keeps its size
    const lensesIn = async () => (await configLenses(pathToFileURL(config).href, 'model: ./m\noutput:\n  runs_dir: cached\n')).slice(2).map((lens) => lens.command?.arguments?.[0]);
    assert.deepEqual(await lensesIn(), [runDir]);
    // the same time and size: the recorded answer stands, the file is not read again
    await writeFile(file, stringify({ configPath: other, model: '/m', output: { runs_dir: join(dir, 'cached') } }));
    await utimes(file, 1000, 1000);
    assert.deepEqual(await lensesIn(), [runDir]);
    await utimes(file, 1001, 1001);
    assert.deepEqual(await lensesIn(), []);

    await writeFile(file, `${stringify({ configPath: config })}${'#'.repeat(8 << 20)}\n`);
    const started = Date.now();
    assert.deepEqual(await lensesIn(), []);
    assert.ok(Date.now() - started < 5000);
  });

  it("looks in the editor's runs folder setting instead, when it is set", async () => {
    const central = await run('central', 'y', config, 1000, false);
    const lenses = await configLenses(pathToFileURL(config).href, 'model: ./m\noutput:\n  runs_dir: elsewhere\n', join(dir, 'central'));
    assert.deepEqual(lenses.slice(2).map((lens) => [lens.command?.command, lens.command?.arguments]), [[commandIds.openPanel, [central]]]);
  });

  it('does not look into a runs folder the server may not read', async () => {
    await run('guarded', 'z', config, 1000, false);
    const asked: string[] = [];
    const lenses = await configLenses(pathToFileURL(config).href, 'model: ./m\n', join(dir, 'guarded'), [], async (folder) => {
      asked.push(folder);
      return false;
    });
    assert.deepEqual(asked, [join(dir, 'guarded')]);
    assert.deepEqual(lenses.map((lens) => lens.command?.title), ['$(play) Train', 'Estimate']);
  });
});
