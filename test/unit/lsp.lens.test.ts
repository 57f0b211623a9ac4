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
  const commands = async (text: string) => (await configLenses(pathToFileURL(config).href, text)).map((lens) => [lens.command?.command, lens.command?.arguments]);
  const run = async (runsDir: string, name: string, configPath: string, seconds: number, adapter = false) => {
    const runDir = join(dir, runsDir, name);
    await mkdir(join(runDir, 'checkpoints'), { recursive: true });
    await writeFile(join(runDir, 'config.yaml'), stringify({ configPath, model: '/m', output: { runs_dir: join(dir, runsDir) } }));
    await utimes(join(runDir, 'config.yaml'), seconds, seconds);
    if (adapter) {
      await mkdir(join(runDir, 'adapter'));
      await writeFile(join(runDir, 'adapter', 'adapter_config.json'), '{}');
    }
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

  it('Open panel on the newest run of this config, Merge when it has an adapter', async () => {
    await run('runs', 'a-old', config, 1000, true);
    const newest = await run('runs', 'a-new', config, 2000, false);
    let lenses = await commands('model: ./m\n');
    assert.deepEqual(lenses.slice(2), [[commandIds.openPanel, [newest]]]);
    await mkdir(join(newest, 'adapter'));
    await writeFile(join(newest, 'adapter', 'adapter_config.json'), '{}');
    lenses = await commands('model: ./m\n');
    assert.deepEqual(lenses.slice(2), [
      [commandIds.openPanel, [newest]],
      [commandIds.mergeAdapter, [join(newest, 'adapter')]],
    ]);
  });

  it("looks in the config's output.runs_dir, relative to the config", async () => {
    const elsewhere = await run('elsewhere', 'x', config, 1000, true);
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
    const lenses = await configLenses(pathToFileURL(config).href, 'model: ./m\n', join(dir, 'guarded'), async (folder) => {
      asked.push(folder);
      return false;
    });
    assert.deepEqual(asked, [join(dir, 'guarded')]);
    assert.deepEqual(lenses.map((lens) => lens.command?.title), ['$(play) Train', 'Estimate']);
  });
});
