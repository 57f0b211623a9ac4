// What "New Adapter Config" offers: the model folders (config.json beside *.safetensors) and the
// datasets (*.jsonl, with the format their first record reads as) found under a workspace folder,
// ranked so that the likeliest training and eval files come first. Node only (no 'vscode'),
// unit-tested.
import type { Dirent } from 'node:fs';
import { open, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';

/** How a dataset's records read, as the config's `data.format` names them; `choices`: multiple choice (eval with `completion`). */
export type DatasetKind = 'text' | 'completion' | 'alpaca' | 'chat' | 'choices';

export interface FoundModel {
  dir: string;
  /** config.json's first `architectures` entry, e.g. `LlamaForCausalLM`. */
  architecture?: string;
}

export interface FoundDataset {
  file: string;
  /** Undefined when the first record is not one of the formats (or not JSON). */
  kind?: DatasetKind;
}

export interface Found {
  models: FoundModel[];
  datasets: FoundDataset[];
  /** The walk stopped at its limit: there may be more. */
  truncated: boolean;
}

/** Folders never walked: tools' and version control's own, and dependencies. */
const SKIP = new Set(['node_modules', '.git', '.hg', '.svn', '.venv', 'venv', '__pycache__', '.cache']);

/** Walks `root` (hidden folders and SKIP aside) down to `depth` levels, looking at no more than `maxEntries` entries. */
export async function scanWorkspace(root: string, { depth = 5, maxEntries = 20_000 } = {}): Promise<Found> {
  const models: FoundModel[] = [];
  const datasets: FoundDataset[] = [];
  let seen = 0;
  let truncated = false;
  const walk = async (dir: string, level: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable: nothing to offer from it
    }
    seen += entries.length;
    if (seen > maxEntries) {
      truncated = true;
      return;
    }
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    if (files.has('config.json') && [...files].some((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json'))) models.push(await modelAt(dir));
    for (const name of [...files].filter((f) => f.toLowerCase().endsWith('.jsonl')).sort()) datasets.push(await datasetAt(join(dir, name)));
    if (level >= depth) return;
    for (const entry of entries) {
      if (entry.isDirectory() && !entry.name.startsWith('.') && !SKIP.has(entry.name)) await walk(join(dir, entry.name), level + 1);
    }
  };
  await walk(root, 0);
  const shallowFirst = (a: string, b: string) => a.split(sep).length - b.split(sep).length || a.localeCompare(b);
  models.sort((a, b) => shallowFirst(a.dir, b.dir));
  return { models, datasets, truncated };
}

/** A file the user picked: its format from its first record. */
export async function datasetAt(file: string): Promise<FoundDataset> {
  const kind = kindOf(await firstLine(file));
  return { file, ...(kind ? { kind } : {}) };
}

/** A folder the user picked: a model folder when it holds config.json. */
export async function modelAt(dir: string): Promise<FoundModel> {
  const architecture = await architectureOf(join(dir, 'config.json'));
  return { dir, ...(architecture ? { architecture } : {}) };
}

async function architectureOf(configFile: string): Promise<string | undefined> {
  try {
    const config = JSON.parse(await readFile(configFile, 'utf8')) as { architectures?: unknown };
    const first = Array.isArray(config.architectures) ? config.architectures[0] : undefined;
    return typeof first === 'string' ? first : undefined;
  } catch {
    return undefined;
  }
}

/** The first non-empty line of a file, reading at most 64 KiB. */
async function firstLine(file: string): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return (
      buffer
        .subarray(0, bytesRead)
        .toString('utf8')
        .split('\n')
        .find((line) => line.trim()) ?? ''
    );
  } finally {
    await handle.close();
  }
}

/** The format a record reads as, by its fields (as the server's data loader reads them). */
export function kindOf(line: string): DatasetKind | undefined {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
  const has = (key: string) => key in record;
  if (has('messages')) return 'chat';
  if (has('instruction') && has('output')) return 'alpaca';
  if (has('prompt') && has('completion')) return 'completion';
  if (has('prompt') && has('choices') && has('answer')) return 'choices';
  if (has('text')) return 'text';
  return undefined;
}

const TRAIN_NAME = /train/i;
const EVAL_NAME = /eval|valid|dev|test/i;

/** A file named like training data (`train.jsonl`, `my-train-set.jsonl`). */
export function namedForTraining(dataset: FoundDataset): boolean {
  return TRAIN_NAME.test(basename(dataset.file));
}

/**
 * Datasets that can train, likeliest first: a known format other than multiple choice; named
 * like training data first, then the rest, each group shallow first.
 */
export function trainCandidates(datasets: readonly FoundDataset[]): FoundDataset[] {
  const usable = datasets.filter((d) => d.kind !== undefined && d.kind !== 'choices');
  const score = (d: FoundDataset) => (namedForTraining(d) ? 0 : EVAL_NAME.test(basename(d.file)) ? 2 : 1);
  return [...usable].sort((a, b) => score(a) - score(b) || a.file.split(sep).length - b.file.split(sep).length || a.file.localeCompare(b.file));
}

/**
 * The eval file for a training file: named like eval data, in the same folder, in the same
 * format (or multiple choice for `completion`, which also gives an accuracy); the same format
 * first. Undefined when there is none: the config then has no `eval`.
 */
export function evalFor(train: FoundDataset, datasets: readonly FoundDataset[]): FoundDataset | undefined {
  const matches = datasets.filter(
    (d) =>
      d.file !== train.file &&
      dirname(d.file) === dirname(train.file) &&
      EVAL_NAME.test(basename(d.file)) &&
      (d.kind === train.kind || (train.kind === 'completion' && d.kind === 'choices')),
  );
  return matches.sort((a, b) => Number(a.kind !== train.kind) - Number(b.kind !== train.kind) || a.file.localeCompare(b.file))[0];
}

/** The config's `data.format` for a training file's kind. */
export function formatOf(kind: DatasetKind): 'text' | 'completion' | 'alpaca' | 'chat' {
  return kind === 'choices' ? 'completion' : kind;
}

/** target_modules for a model's architecture: GPT-2's fused attention, else the Llama family's projections. */
export function targetModulesFor(architecture: string | undefined): string[] {
  return architecture === 'GPT2LMHeadModel' ? ['c_attn'] : ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'];
}

/** A path as a config at `configDir` writes it: relative, forward slashes, `./` when inside. */
export function relativeToConfig(configDir: string, path: string): string {
  const r = relative(configDir, path).split(sep).join('/');
  return r.startsWith('.') ? r : `./${r}`;
}
