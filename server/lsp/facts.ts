// What the configs point at, read from disk for the editor: a model folder's architecture and
// linear modules (as the engine lays the model out, from config.json and the safetensors
// headers, never the weights) and a dataset's first lines. Each is cached per path and watched;
// when a file changes the entry is dropped and the owner is told, so that the configs using it
// are checked again. Every file is opened only if it is a regular file (a FIFO or a device named
// as a dataset must not stall the server), and only its head is read.
import { stat } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { scanRecords, type DataRecord } from '../engine/data';
import type { ModelShape } from '../models/config';
import { baseStoreBytes, matchTargetModules, readModelLayout, type ModelLayout, type ModuleSize } from '../models/modules';
import { PRECISION_SETTINGS } from '../models/inspect';
import { describeBaseFormats, type BaseFormats } from '../../kernels/base/quant';
import { checkTokenizerFiles } from '../models/tokenizer';
import { targetPatternProblem } from '../models/target-pattern';
import type { ConfigSource } from './document';
import { baseFormats, CONFIG_DEFAULTS, type AdapterConfig } from '../config/schema';

/** The modules target_modules selects: PEFT's rules, as training applies them (matchTargetModules). */
export function targetedModules(modules: readonly ModuleSize[], targets: string | readonly string[]): ModuleSize[] {
  const selected = new Set(matchTargetModules(modules.map((m) => m.name), targets).modules);
  return modules.filter((module) => selected.has(module.name));
}

/** target_modules as a message quotes it: a list's entries, or the pattern. */
export function describeTargets(targets: string | readonly string[]): string {
  return typeof targets === 'string' ? JSON.stringify(targets) : targets.join(', ');
}

/**
 * target_modules as a config has it: its list's string entries, its pattern (when RE2 compiles
 * it; the schema reports one it refuses), or the default when it is not written.
 */
export function writtenTargets(source: ConfigSource, fallback: string | readonly string[]): string | readonly string[] {
  const list = source.list(['target_modules']);
  if (list) return list.map((entry) => entry.value).filter((value): value is string => typeof value === 'string');
  const scalar = source.scalar(['target_modules']);
  if (!scalar) return source.has(['target_modules']) ? [] : fallback;
  return typeof scalar.value === 'string' && targetPatternProblem(scalar.value) === null ? scalar.value : [];
}

/** The keys that choose the frozen base's stored precision (schema.ts baseFormats). */
export const PRECISION_KEYS = ['torch_dtype', 'load_in_8bit', 'load_in_4bit', 'bnb_4bit_quant_type', 'quant_group_size'] as const;

/** The base's stored formats as a config writes them, each key as the schema accepts it, else its default. */
export function writtenBaseFormats(source: ConfigSource): BaseFormats {
  const written = Object.fromEntries(PRECISION_KEYS.map((key) => [key, source.acceptedValue([key], CONFIG_DEFAULTS[key])]));
  return baseFormats(written as Pick<AdapterConfig, (typeof PRECISION_KEYS)[number]>);
}

/** What a target can be written as: the distinct last names (`q_proj`) first, then the full names. */
export function targetNames(modules: readonly ModuleSize[]): { suffixes: string[]; names: string[] } {
  const suffixes = [...new Set(modules.map((module) => module.name.slice(module.name.lastIndexOf('.') + 1)))];
  return { suffixes, names: modules.map((module) => module.name) };
}

/**
 * A model folder as the configs see it; `shape` is what the memory estimate needs from
 * config.json, `layout` what prices the base at a precision; `tokenizerProblem` what is wrong
 * with its tokenizer files, if anything.
 */
export type ModelFacts =
  | { ok: true; dir: string; architecture: string; modules: ModuleSize[]; totalParameters: number; shape: ModelShape; layout?: ModelLayout; tokenizerProblem: string | null }
  | { ok: false; dir: string; problem: string };

/**
 * A problem reading a model folder, in one line: a value nested past the stack (an error message
 * quoting it recursed into it) is named with its folder, not shown as the engine's RangeError.
 */
function problemOf(error: unknown, dir: string, files: string): string {
  if (error instanceof RangeError && /call stack/.test(error.message)) return `${dir}: ${files} holds a value nested too deeply to read`;
  return error instanceof Error ? error.message : String(error);
}

export async function readModelFacts(dir: string): Promise<ModelFacts> {
  const fail = (problem: string): ModelFacts => ({ ok: false, dir, problem });
  try {
    if (!(await stat(dir)).isDirectory()) return fail(`${dir} is a file, not a model folder`);
  } catch {
    return fail(`folder not found: ${dir}`);
  }
  if (!existsSync(join(dir, 'config.json'))) {
    return fail(`${dir} has no config.json; a Hugging Face model folder holds config.json, *.safetensors and tokenizer.json`);
  }
  // The engine's own reading of the folder: the same architectures, modules, names and parameter
  // count it trains with, and the same complaint about a config.json it cannot use or that
  // disagrees with the weights.
  let read: Awaited<ReturnType<typeof readModelLayout>>;
  try {
    read = await readModelLayout(dir);
  } catch (error) {
    return fail(problemOf(error, dir, 'config.json or a safetensors header'));
  }
  const { config: c, layout } = read;
  const modules = layout.linears.map(({ name, dIn, dOut }) => ({ name, dIn, dOut }));
  const totalParameters = layout.parameters.reduce((n, { shape }) => n + shape.reduce((a, b) => a * b, 1), 0);
  const tokenizerProblem = await checkTokenizerFiles(dir).then(
    () => null,
    (error: unknown) => problemOf(error, dir, 'a tokenizer file'),
  );
  return {
    ok: true,
    dir,
    architecture: c.architecture,
    modules,
    totalParameters,
    shape: { hidden: c.hiddenSize, layers: c.numLayers, heads: c.numHeads, vocab: c.vocabSize },
    layout,
    tokenizerProblem,
  };
}

/** The frozen base of a layout at the config's formats (in words and bytes), and at each precision a config can ask for. */
export function baseMemory(layout: ModelLayout, formats: BaseFormats): { base: { precision: string; bytes: number }; baseAtPrecisions: { setting: string; bytes: number }[] } {
  return {
    base: { precision: describeBaseFormats(formats), bytes: baseStoreBytes(layout, formats) },
    baseAtPrecisions: PRECISION_SETTINGS.map(({ setting, formats: at }) => ({ setting, bytes: baseStoreBytes(layout, at) })),
  };
}

export const DATASET_HEAD_LINES = 20;
const JSON_MAX_BYTES = 16 << 20;

export interface DatasetHead {
  /** The first records (at most DATASET_HEAD_LINES), 1-based lines. */
  records: DataRecord[];
  /** Lines among the first that are not JSON objects: `line N: …`. */
  problems: string[];
  /** False when the file was too large to look at (a .json array over 4 MiB, a first line over 1 MiB). */
  checked: boolean;
}

export type DatasetFacts = ({ ok: true } & DatasetHead) | { ok: false; problem: string };

/** The first lines of a .jsonl dataset (or first entries of a .json array), read as training reads them (scanRecords), without reading the whole file. */
export async function readDatasetHead(file: string, count = DATASET_HEAD_LINES): Promise<DatasetFacts> {
  let size: number;
  try {
    const info = await stat(file);
    if (info.isDirectory()) return { ok: false, problem: `${file} is a folder, not a dataset file` };
    size = info.size;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, problem: code === 'ENOENT' ? `file not found: ${file}` : `cannot read ${file} (${code ?? String(error)})` };
  }
  const head = { records: [] as DataRecord[], problems: [] as string[], checked: true };
  if (file.endsWith('.json') && size > JSON_MAX_BYTES) return { ok: true, ...head, checked: false };
  try {
    for await (const record of scanRecords(file, count)) {
      if ('value' in record) head.records.push(record);
      else head.problems.push(`line ${record.line}: ${record.problem}`);
    }
  } catch (error) {
    const message = (error as Error).message;
    return { ok: false, problem: message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message };
  }
  if (head.records.length === 0 && head.problems.length === 0) return { ok: false, problem: `no examples in ${file}` };
  return { ok: true, ...head };
}

/** The path itself if it exists, else its nearest ancestor that does. */
function nearestExisting(path: string): string {
  let current = path;
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current);
  return current;
}

function modified(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? -1;
}

/** Whether a change at `changed` can affect `path`: the path itself, a folder on its way, or something inside it. */
function onRoute(changed: string, path: string): boolean {
  return changed === path || path.startsWith(changed + sep) || changed.startsWith(path + sep);
}

/**
 * Watches a path that may not exist yet (a model still to download, a dataset still to write):
 * the path itself when it exists, else its nearest existing ancestor, moving as folders appear
 * or disappear. Never keeps the process alive.
 */
class PathWatcher {
  private watcher: FSWatcher | undefined;
  private root: string | undefined;
  private closed = false;

  constructor(
    private readonly path: string,
    /** For a folder: how deep inside it to watch. */
    private readonly depth: number | undefined,
    private readonly onEvent: () => void,
  ) {
    this.arm();
  }

  private arm(): void {
    const root = nearestExisting(this.path);
    if (this.closed || root === this.root) return;
    const previous = this.watcher;
    const exact = root === this.path;
    const depth = exact ? this.depth : 0;
    const watcher = watch(root, { ignoreInitial: true, persistent: false, ...(depth !== undefined ? { depth } : {}) });
    watcher.on('all', (_event, changed) => {
      if (this.watcher !== watcher || (!exact && !onRoute(changed, this.path))) return;
      this.arm();
      this.onEvent();
    });
    watcher.on('error', () => undefined); // an unreadable path is reported by the facts themselves
    // What changes while chokidar takes its first look counts as initial and raises no event:
    // compare the folder's (or file's) modification time from before with the one after.
    const stamp = modified(root);
    watcher.on('ready', () => {
      if (this.watcher !== watcher || (modified(root) === stamp && nearestExisting(this.path) === root)) return;
      this.arm();
      this.onEvent();
    });
    this.root = root;
    this.watcher = watcher;
    void previous?.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
  }
}

interface Entry<T> {
  /** Undefined after a change, until the next read. */
  facts: Promise<T> | undefined;
  watcher: PathWatcher;
}
/**
 * Model and dataset facts, cached per absolute path. A watcher on each path drops the cached facts
 * when anything there changes and calls `onChange(path)`. Watchers never keep the process alive.
 */
export class FactCache {
  private readonly models = new Map<string, Entry<ModelFacts>>();
  private readonly datasets = new Map<string, Entry<DatasetFacts>>();
  private disposed = false;

  constructor(private readonly onChange: (path: string) => void) {}

  model(dir: string): Promise<ModelFacts> {
    // depth 0: config.json and the safetensors files sit directly in the folder.
    return this.get(this.models, dir, readModelFacts, 0);
  }

  dataset(file: string): Promise<DatasetFacts> {
    return this.get(this.datasets, file, readDatasetHead, undefined);
  }

  has(path: string): boolean {
    return this.models.has(path) || this.datasets.has(path);
  }

  /** Forgets (and stops watching) every path not in `used`. */
  retain(used: ReadonlySet<string>): void {
    for (const cache of [this.models, this.datasets] as Map<string, Entry<unknown>>[]) {
      for (const [path, entry] of cache) {
        if (used.has(path)) continue;
        cache.delete(path);
        void entry.watcher.close();
      }
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const entries = [...this.models.values(), ...this.datasets.values()];
    this.models.clear();
    this.datasets.clear();
    await Promise.all(entries.map((entry) => entry.watcher.close()));
  }

  private get<T>(cache: Map<string, Entry<T>>, path: string, read: (path: string) => Promise<T>, depth: number | undefined): Promise<T> {
    const entry = cache.get(path);
    if (entry) return (entry.facts ??= read(path));
    if (this.disposed) return read(path);
    const watcher = new PathWatcher(path, depth, () => {
      const current = cache.get(path);
      if (current?.watcher !== watcher) return;
      current.facts = undefined;
      this.onChange(path);
    });
    const facts = read(path);
    cache.set(path, { facts, watcher });
    return facts;
  }
}
