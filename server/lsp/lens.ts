// Code lenses at the top of a config: "Train" and "Estimate" (argument: the config's URI), and,
// once a run of this config exists (in the editor's runs folder setting, else the config's own),
// "Open panel" and "Merge" for its newest run (arguments: the run folder, and its adapter
// folder). The extension implements the commands; their ids live in the protocol file.
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
import { readTextFile } from '../formats/files';
import { commandIds } from '../../protocol/commands';
import { ConfigSource, filePathOf, resolveFrom } from './document';

const DEFAULT_RUNS_DIR = outputSchema.parse({}).runs_dir;

/**
 * `runsDirectory`: the editor's `moslora.runsDirectory`, which overrides the config's
 * `output.runs_dir`. `readable`: whether the server may read a folder; a runs folder it may not
 * (outside the workspace) is not looked into, and brings no run lenses.
 */
export async function configLenses(uri: string, text: string, runsDirectory: string | null = null, readable: (dir: string) => Promise<boolean> = async () => true): Promise<CodeLens[]> {
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
  const runDir = await newestRunOf(configPath, runsDir);
  if (!runDir) return lenses;
  const name = basename(runDir);
  lenses.push({ range, command: { title: 'Open panel', tooltip: `Show run ${name} in the training panel`, command: commandIds.openPanel, arguments: [runDir] } });
  const adapterDir = join(runDir, 'adapter');
  if (existsSync(join(adapterDir, 'adapter_config.json'))) {
    lenses.push({ range, command: { title: 'Merge', tooltip: `Merge the adapter of run ${name} into its base model`, command: commandIds.mergeAdapter, arguments: [adapterDir] } });
  }
  return lenses;
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
 * The newest run folder under `runsDir` (by its config.yaml's time, as `listRuns` orders) whose
 * config.yaml, the resolved config that ran, names `configPath`. Null when there is none.
 */
export async function newestRunOf(configPath: string, runsDir: string): Promise<string | null> {
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch {
    return null;
  }
  const runs = await Promise.all(
    names.map(async (name) => {
      const file = join(runsDir, name, 'config.yaml');
      const info = await stat(file).catch(() => null);
      return info?.isFile() ? { dir: join(runsDir, name), file, modified: info.mtimeMs, size: info.size } : null;
    }),
  );
  const target = resolve(configPath);
  for (const run of runs.filter((r) => r !== null).sort((a, b) => b.modified - a.modified)) {
    if ((await configPathOf(run.file, run.modified, run.size)) === target) return run.dir;
  }
  return null;
}
