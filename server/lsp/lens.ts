// Code lenses at the top of a config: "Train" and "Estimate" (argument: the config's URI), and,
// once runs of this config exist (in the editor's runs folder setting, else the config's own):
// "Open panel" on its newest finished run (else its newest), "Merge" for the newest finished run
// with an adapter, "Resume" when its newest run stopped or failed with a checkpoint (arguments:
// the run folder, or its adapter folder). Each names its run. The extension implements the
// commands; their ids live in the protocol file.
// A run's config.yaml is read once per change (by its modification time and size), and only if
// it is a regular file of a config's size: the lenses of every config come back in milliseconds,
// whatever the runs folder holds, and never keep a hover waiting.
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { CodeLens } from 'vscode-languageserver';
import { parse } from 'yaml';
import { MAX_ALIAS_COUNT, MAX_CONFIG_BYTES, unreadableConfig } from '../config/load';
import { outputSchema } from '../config/schema';
import { RunDirectory } from '../engine/runs';
import { readTextFile } from '../formats/files';
import { commandIds } from '../../protocol/commands';
import { ConfigSource, filePathOf, resolveFrom } from './document';

const DEFAULT_RUNS_DIR = outputSchema.parse({}).runs_dir;

/**
 * `runsDirectory`: the editor's `moslora.runsDirectory`, which overrides the config's
 * `output.runs_dir`. `liveRunDirs`: the run folders jobs train now (no Resume for those).
 * `readable`: whether the server may read a folder; a runs folder it may not (outside the
 * workspace) is not looked into, and brings no run lenses.
 */
export async function configLenses(
  uri: string,
  text: string,
  runsDirectory: string | null = null,
  liveRunDirs: readonly string[] = [],
  readable: (dir: string) => Promise<boolean> = async () => true,
): Promise<CodeLens[]> {
  const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  const lenses: CodeLens[] = [
    { range, command: { title: '$(play) Train', command: commandIds.startTraining, arguments: [uri] } },
    { range, command: { title: 'Estimate', command: commandIds.estimate, arguments: [uri] } },
  ];
  const configPath = filePathOf(uri);
  if (!configPath) return lenses;
  const written = new ConfigSource(text).scalar(['output', 'runs_dir'])?.value;
  const runsDir = runsDirectory ?? resolveFrom(configPath, typeof written === 'string' && written ? written : DEFAULT_RUNS_DIR);
  if (!(await readable(runsDir))) return lenses;
  const runs = await runsOf(configPath, runsDir);
  const newest = runs[0];
  if (!newest) return lenses;
  const finished = await firstAsync(runs, async (dir) => (await new RunDirectory(dir).readSummary())?.state === 'done');
  const shown = finished ?? newest;
  lenses.push({
    range,
    command: { title: `Open panel: ${basename(shown)}`, tooltip: `Show run ${basename(shown)}${finished ? ', the newest that finished,' : ''} in the training panel`, command: commandIds.openPanel, arguments: [shown] },
  });
  const merged = await firstAsync(runs, async (dir) => existsSync(join(dir, 'adapter', 'adapter_config.json')) && (await new RunDirectory(dir).readSummary())?.state === 'done');
  if (merged) {
    const name = basename(merged);
    lenses.push({ range, command: { title: `Merge ${name}`, tooltip: `Merge the adapter of run ${name} into its base model`, command: commandIds.mergeAdapter, arguments: [join(merged, 'adapter')] } });
  }
  const live = new Set(liveRunDirs.map((dir) => resolve(dir)));
  if (newest !== finished && !live.has(newest) && (await new RunDirectory(newest).checkpointSteps()).length > 0) {
    const name = basename(newest);
    lenses.push({ range, command: { title: `$(debug-continue) Resume ${name}`, tooltip: `Continue run ${name} from its newest checkpoint`, command: commandIds.resumeTraining, arguments: [newest] } });
  }
  return lenses;
}

async function firstAsync<T>(items: readonly T[], test: (item: T) => Promise<boolean>): Promise<T | undefined> {
  for (const item of items) if (await test(item)) return item;
  return undefined;
}

/** What a run's config.yaml says ran, by file, with the modification time and size it was read at. */
const recorded = new Map<string, { modified: number; size: number; configPath: Promise<string | null> }>();
const RECORDED = 10_000;

/**
 * The config a run's config.yaml (the resolved config that ran) names, or null for a torn,
 * foreign or oversized one: not a run of any config here. Read again only when it changed.
 */
function configPathOf(file: string, modified: number, size: number): Promise<string | null> {
  const known = recorded.get(file);
  if (known && known.modified === modified && known.size === size) return known.configPath;
  const configPath = readTextFile(file, "a run's config.yaml", MAX_CONFIG_BYTES)
    .then((text) => {
      if (unreadableConfig(text)) return null;
      const config = parse(text, { maxAliasCount: MAX_ALIAS_COUNT }) as { configPath?: unknown } | null;
      return typeof config?.configPath === 'string' ? resolve(config.configPath) : null;
    })
    .catch(() => null);
  if (recorded.size >= RECORDED) recorded.delete(recorded.keys().next().value!);
  recorded.set(file, { modified, size, configPath });
  return configPath;
}

/**
 * The run folders under `runsDir` whose config.yaml, the resolved config that ran, names
 * `configPath`: newest first, by config.yaml's time, as `listRuns` orders.
 */
export async function runsOf(configPath: string, runsDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch {
    return [];
  }
  const runs = await Promise.all(
    names.map(async (name) => {
      const file = join(runsDir, name, 'config.yaml');
      const info = await stat(file).catch(() => null);
      return info?.isFile() ? { dir: join(runsDir, name), file, modified: info.mtimeMs, size: info.size } : null;
    }),
  );
  const target = resolve(configPath);
  const mine: string[] = [];
  for (const run of runs.filter((r) => r !== null).sort((a, b) => b.modified - a.modified)) {
    if ((await configPathOf(run.file, run.modified, run.size)) === target) mine.push(run.dir);
  }
  return mine;
}
