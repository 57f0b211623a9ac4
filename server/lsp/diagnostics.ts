// Diagnostics of an open config: everything the loader reports (syntax, schema, surprises), then
// what only the files on disk can tell: the model folder, the target modules of its checkpoint,
// r against their sizes, and the datasets' first lines. Each sits on the value that is wrong.
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { closest, distance } from 'fastest-levenshtein';
import { DiagnosticSeverity, type Diagnostic, type Range } from 'vscode-languageserver';
import { MAX_ISSUES, parseConfigText } from '../config/load';
import { CONFIG_DEFAULTS, DATA_FORMATS, DATASET_FIELDS, DEFAULT_TARGET_MODULES } from '../config/schema';
import { checkRecords, DatasetError, type DataFormat, type FieldNames } from '../engine/data';
import { ConfigSource, filePathOf, quotedLike, resolveFrom, type Located } from './document';
import { BACKEND_PREFERENCES } from '../../protocol/backends';
import { expectedWasmProducts } from '../runtime';
import { parameterCounts, trainableCount } from './hover';
import { boundedBytes, formatBytes, estimateMemory, memoryLimit, OPTIMIZER_COPIES, resolveCheckpointing } from '../engine/memory';
import { baseStoreBytes } from '../models/modules';
import { describeBaseFormats } from '../../kernels/base/quant';
import { planWorkers } from '../engine/plan-workers';
import { DATASET_HEAD_LINES, targetedModules, targetNames, writtenBaseFormats, writtenTargets, type FactCache, type ModelFacts } from './facts';
import { matchesTarget } from '../models/modules';
import { MAX_PATTERN_LENGTH } from '../models/target-pattern';

export const SOURCE = 'moslora';

/** Carried in `Diagnostic.data` of a diagnostic that a quick fix can fix. */
export interface FixData {
  /** Replaces the diagnostic's range. */
  replacement: string;
  title: string;
}

export interface Validation {
  diagnostics: Diagnostic[];
  /** The model folders and dataset files this config's diagnostics depend on. */
  paths: Set<string>;
}

function diagnostic(range: Range, message: string, severity: 'error' | 'warning', fix?: FixData): Diagnostic {
  return {
    range,
    message,
    severity: severity === 'error' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
    source: SOURCE,
    ...(fix ? { data: fix } : {}),
  };
}

function suggestion(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates as string[]);
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export async function validateConfig(uri: string, text: string, facts: FactCache): Promise<Validation> {
  const parsed = parseConfigText(text, uri);
  const source = new ConfigSource(text);
  const diagnostics = parsed.issues.map((issue) => {
    const written = text.slice(source.offset(issue.range.start), source.offset(issue.range.end));
    const replacement = issue.replacement === undefined ? undefined : quotedLike(written, issue.replacement);
    return diagnostic(issue.range, issue.message, issue.severity, replacement === undefined ? undefined : { replacement, title: `Change to ${issue.replacement}` });
  });
  const paths = new Set<string>();
  const configPath = filePathOf(uri);
  // A config that does not parse has no values to check against the disk.
  if (!configPath || !source.valid) return { diagnostics, paths };

  const model = source.scalar(['model']);
  if (model && typeof model.value === 'string' && model.value) {
    const dir = resolveFrom(configPath, model.value);
    paths.add(dir);
    const modelFacts = await facts.model(dir);
    diagnostics.push(
      ...(modelFacts.ok
        ? [
            ...(modelFacts.tokenizerProblem ? [diagnostic(model.range, `model: ${modelFacts.tokenizerProblem}`, 'error')] : []),
            ...moduleDiagnostics(source, modelFacts, model),
            ...memoryDiagnostics(source, modelFacts, model),
          ]
        : [diagnostic(model.range, `model: ${modelFacts.problem}`, 'error')]),
    );
  }

  for (const key of ['train', 'eval'] as const) {
    const file = source.scalar(['data', key]);
    if (!file || typeof file.value !== 'string' || !file.value) continue;
    const path = resolveFrom(configPath, file.value);
    paths.add(path);
    const head = await facts.dataset(path);
    if (!head.ok) {
      diagnostics.push(diagnostic(file.range, `data.${key}: ${head.problem}`, 'error'));
      continue;
    }
    const format = dataFormat(source);
    const problems = [...head.problems, ...(format ? fieldProblems(path, head.records, format, writtenFields(source)) : [])];
    if (problems.length === 0) continue;
    const sorted = problems.sort((a, b) => lineOf(a) - lineOf(b));
    const more = sorted.length > 1 ? ` (and ${sorted.length - 1} more of the first ${DATASET_HEAD_LINES} lines)` : '';
    diagnostics.push({
      ...diagnostic(file.range, `data.${key}: ${basename(path)} ${sorted[0]}${more}`, 'error'),
      relatedInformation: [
        {
          location: { uri: pathToFileURL(path).href, range: { start: { line: lineOf(sorted[0]!) - 1, character: 0 }, end: { line: lineOf(sorted[0]!) - 1, character: 0 } } },
          message: sorted[0]!,
        },
      ],
    });
  }
  return { diagnostics, paths };
}

function lineOf(problem: string): number {
  return Number(/^line (\d+)/.exec(problem)?.[1] ?? 0);
}

function dataFormat(source: ConfigSource): DataFormat | null {
  const written = source.scalar(['data', 'format']);
  if (!written) return source.has(['data', 'format']) ? null : 'completion';
  return (DATA_FORMATS as readonly unknown[]).includes(written.value) ? (written.value as DataFormat) : null;
}

/** data.fields as written: the dataset's own names for the format's fields. */
function writtenFields(source: ConfigSource): FieldNames {
  return Object.fromEntries(
    DATASET_FIELDS.map((field) => [field, source.scalar(['data', 'fields', field])?.value]).filter((pair): pair is [string, string] => typeof pair[1] === 'string'),
  );
}

/** The records' missing or mistyped fields, as `line N: …` (the engine's own check, so both agree). */
function fieldProblems(file: string, records: Parameters<typeof checkRecords>[1], format: DataFormat, fields: FieldNames): string[] {
  try {
    checkRecords(file, records, format, fields);
    return [];
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    return error.problems.map((problem) => problem.replace(`${file}:`, 'line '));
  }
}

/** The target modules against the checkpoint's linear modules, and r against their sizes. */
function moduleDiagnostics(source: ConfigSource, model: Extract<ModelFacts, { ok: true }>, modelValue: Located<unknown>): Diagnostic[] {
  const out: Diagnostic[] = [];
  const what = `${basename(model.dir)} (${model.architecture})`;
  const { suffixes, names } = targetNames(model.modules);
  const written = source.list(['target_modules']);
  const targets = writtenTargets(source, DEFAULT_TARGET_MODULES);
  const unmatched = (written ?? []).filter((entry): entry is Located<string> => typeof entry.value === 'string' && !model.modules.some((module) => matchesTarget(module.name, entry.value as string)));
  for (const entry of unmatched.slice(0, MAX_ISSUES)) {
    // an entry longer than any pattern the schema takes is reported there, with no guess to make
    const guess = entry.value.length <= MAX_PATTERN_LENGTH ? (suggestion(entry.value, suffixes) ?? suggestion(entry.value, names)) : undefined;
    const hint = guess ? `did you mean "${guess}"?` : `its linear modules end in ${suffixes.join(', ')}`;
    const fix = guess ? { replacement: quotedLike(entry.source, guess), title: `Change to ${guess}` } : undefined;
    out.push(diagnostic(entry.range, `target_modules: ${JSON.stringify(entry.value.slice(0, MAX_PATTERN_LENGTH))} matches no linear module of ${what}; ${hint}`, 'error', fix));
  }
  if (unmatched.length > MAX_ISSUES) {
    out.push(diagnostic(unmatched[MAX_ISSUES]!.range, `target_modules: ${unmatched.length - MAX_ISSUES} more entries match no linear module of ${what}; its linear modules end in ${suffixes.join(', ')}`, 'error'));
  }
  const pattern = source.scalar(['target_modules']);
  if (pattern && typeof targets === 'string' && targetedModules(model.modules, targets).length === 0) {
    out.push(
      diagnostic(
        pattern.range,
        `target_modules: "${targets}" matches no linear module of ${what}; a pattern must match whole module names (e.g. ".*\\.${suffixes[0]}"); a list matches by suffix`,
        'error',
      ),
    );
  }
  if (!source.has(['target_modules']) && targetedModules(model.modules, DEFAULT_TARGET_MODULES).length === 0) {
    out.push(
      diagnostic(
        modelValue.range,
        `target_modules is not set and its default (${DEFAULT_TARGET_MODULES.join(', ')}) matches no linear module of ${what}; set target_modules, e.g. [${suffixes.slice(0, 2).join(', ')}]`,
        'error',
      ),
    );
  }

  const targeted = targetedModules(model.modules, targets);
  const r = source.scalar(['r']);
  const rank = r ? r.value : CONFIG_DEFAULTS.r;
  if (targeted.length === 0 || typeof rank !== 'number' || !Number.isInteger(rank) || rank <= 0) return out;
  const smallest = targeted.reduce((a, b) => (Math.min(b.dIn, b.dOut) < Math.min(a.dIn, a.dOut) ? b : a));
  const largest = Math.min(smallest.dIn, smallest.dOut);
  if (rank > largest) {
    const detail = `is larger than the smallest dimension of a targeted module (${smallest.name}: d_in ${smallest.dIn}, d_out ${smallest.dOut}); the largest r allowed is ${largest}`;
    out.push(
      r
        ? diagnostic(r.range, `r: ${rank} ${detail}`, 'error', { replacement: String(largest), title: `Change r to ${largest}` })
        : diagnostic(modelValue.range, `r is not set and its default ${rank} ${detail}; set r`, 'error'),
    );
  }
  return out;
}

/** The run's estimated peak memory against what its backend can use (see memory.ts for the formula). */
function memoryDiagnostics(source: ConfigSource, model: Extract<ModelFacts, { ok: true }>, modelValue: Located<unknown>): Diagnostic[] {
  const backendValue = source.scalar(['backend'])?.value ?? CONFIG_DEFAULTS.backend;
  const backend = BACKEND_PREFERENCES.find((b) => b === backendValue);
  const limit = backend ? memoryLimit(backend) : null;
  if (!limit) return [];
  const batch = source.accepted(['training', 'batch_size'], CONFIG_DEFAULTS.training.batch_size);
  const maxLength = source.accepted(['data', 'max_length'], CONFIG_DEFAULTS.data.max_length);
  const accumulation = source.accepted(['training', 'gradient_accumulation'], CONFIG_DEFAULTS.training.gradient_accumulation);
  const counts = parameterCounts(
    targetedModules(model.modules, writtenTargets(source, DEFAULT_TARGET_MODULES)),
    source.accepted(['r'], CONFIG_DEFAULTS.r),
    source.accepted(['chain_length'], CONFIG_DEFAULTS.chain_length),
  );
  const method = source.scalar(['method'])?.value ?? CONFIG_DEFAULTS.method;
  const trainable = trainableCount(counts, method, source.scalar(['use_dora'])?.value === true);
  const setting = source.scalar(['training', 'gradient_checkpointing'])?.value;
  const checkpointingSetting = typeof setting === 'boolean' ? setting : 'auto';
  // On wasm and cpu with MLAS the base is in the native store, at the precision the config asks for.
  const formats = writtenBaseFormats(source);
  const native = model.layout && expectedWasmProducts() === 'mlas' ? { nativeBytes: baseStoreBytes(model.layout, formats) } : {};
  const shape = { baseParameters: model.totalParameters, products: expectedWasmProducts(), trainable, maxLength, ...native, ...model.shape };
  // As the engine plans it: each of the threads that share a batch (training.workers) holds its share.
  const threads = planWorkers(source.accepted(['training', 'workers'], 0) || 'auto', backend === 'cpu' ? 'cpu' : 'wasm', { batch, checkpointing: checkpointingSetting, memory: shape }).count;
  const share = Math.ceil(batch / threads);
  const run = { ...shape, batch: share };
  // As the engine decides it: auto (the default) checkpoints exactly when the run needs it.
  const checkpointing = resolveCheckpointing(checkpointingSetting, run, limit).on;
  const estimateAt = (b: number, withCheckpointing: boolean) => estimateMemory({ ...run, batch: b, checkpointing: withCheckpointing });
  const estimate = estimateAt(share, checkpointing);
  if (boundedBytes(estimate, limit) <= limit.bytes) return [];
  // On the value that weighs most against its default (4 × 256); where neither is written, on the model.
  const lengthDominates = maxLength / CONFIG_DEFAULTS.data.max_length > batch / CONFIG_DEFAULTS.training.batch_size;
  const at = (lengthDominates ? source.scalar(['data', 'max_length']) : source.scalar(['training', 'batch_size'])) ?? source.scalar(['training', 'batch_size']) ?? source.scalar(['data', 'max_length']) ?? modelValue;
  // The largest share of a batch that fits at this max_length (0 if none does), as a batch_size
  // with the accumulation that keeps the effective batch. The estimate grows with the batch:
  // bisect, so the search takes as many steps as the batch has bits.
  const effective = batch * accumulation;
  const largestFitting = (withCheckpointing: boolean) => {
    let [fits, tooLarge] = [0, share];
    while (tooLarge - fits > 1) {
      const middle = Math.floor((fits + tooLarge) / 2);
      if (boundedBytes(estimateAt(middle, withCheckpointing), limit) <= limit.bytes) fits = middle;
      else tooLarge = middle;
    }
    return fits;
  };
  const smaller = largestFitting(checkpointing);
  const smallerCheckpointed = checkpointing ? smaller : largestFitting(true);
  const lowerBatch = (b: number) =>
    `lower training.batch_size to ${b * threads}${threads > 1 ? ` (${b} for each of the ${threads} threads)` : ''} and raise training.gradient_accumulation to ${Math.ceil(effective / (b * threads))} to keep the effective batch (${effective})`;
  const checkpointed = estimateAt(share, true);
  const fixes = [
    ...(!checkpointing && boundedBytes(checkpointed, limit) <= limit.bytes
      ? [`set training.gradient_checkpointing: true (estimated ${formatBytes(boundedBytes(checkpointed, limit))}; each step recomputes the layers' forward pass, about a third more time)`]
      : []),
    ...(smaller >= 1 ? [lowerBatch(smaller)] : []),
    ...(!checkpointing && boundedBytes(checkpointed, limit) > limit.bytes && smallerCheckpointed > smaller ? [`set training.gradient_checkpointing: true and ${lowerBatch(smallerCheckpointed)}`] : []),
  ];
  // AdamW's update is a peak of its own, after the activations are freed: no batch or
  // checkpointing lowers it, only fewer trainable values do
  const updateBound = estimate.update > estimate.adapter + estimate.activations;
  const smallest = estimateAt(1, true);
  const fix =
    smallest.update > smallest.adapter + smallest.activations && boundedBytes(smallest, limit) > limit.bytes
      ? `lower r or target fewer modules: AdamW's update holds ${OPTIMIZER_COPIES} float32 copies of the ${trainable.toLocaleString('en-US')} trainable values, whatever the batch`
      : fixes.length
        ? fixes.join('; or ')
        : `lower data.max_length${batch > 1 ? ' and training.batch_size (raising training.gradient_accumulation to keep the effective batch)' : ''}${checkpointing ? '' : ', and set training.gradient_checkpointing: true'}`;
  return [
    diagnostic(
      at.range,
      `memory: this run needs an estimated ${formatBytes(boundedBytes(estimate, limit))} at its peak (${'nativeBytes' in native ? `base weights at ${describeBaseFormats(formats)} outside the heap ${formatBytes(estimate.native)}${limit.scope === 'heap' ? ', not counted here' : ''}` : `base weights as float32${run.products === 'xnnpack' ? " with XNNPACK's packed copy" : ''} ${formatBytes(estimate.weights)}`}, adapter and AdamW state ${formatBytes(estimate.adapter)}, activations for ${share} × ${maxLength} tokens${threads > 1 ? `, each of the ${threads} threads' share of the batch (training.workers)` : ''}${checkpointing ? ` with gradient checkpointing${typeof setting === 'boolean' ? '' : ' (auto)'}` : ''} ${formatBytes(estimate.activations)}${updateBound ? `; AdamW's update after them ${formatBytes(estimate.update)}, the larger` : ''}), more than ${limit.what}; it would likely abort. To fit: ${fix}.`,
      'warning',
    ),
  ];
}

export interface OpenDocument {
  readonly uri: string;
  readonly version: number;
  getText(): string;
}

/**
 * Validates open configs a short while after the last keystroke, publishes the result unless the
 * text changed meanwhile, and validates again the configs that use a file when it changes.
 */
export class DiagnosticsScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** uri → the paths its last validation used. */
  private readonly uses = new Map<string, Set<string>>();

  constructor(
    private readonly facts: FactCache,
    private readonly documents: { get(uri: string): OpenDocument | undefined; all(): OpenDocument[] },
    private readonly publish: (uri: string, version: number, diagnostics: Diagnostic[]) => void,
    private readonly delayMs = 200,
  ) {}

  schedule(uri: string, delayMs = this.delayMs): void {
    clearTimeout(this.timers.get(uri));
    this.timers.set(
      uri,
      setTimeout(() => {
        this.timers.delete(uri);
        void this.run(uri);
      }, delayMs),
    );
  }

  /** A watched file changed: validate again every open config that uses it. */
  changed(path: string): void {
    for (const [uri, paths] of this.uses) if (paths.has(path)) this.schedule(uri);
  }

  close(uri: string): void {
    clearTimeout(this.timers.get(uri));
    this.timers.delete(uri);
    this.uses.delete(uri);
    this.retain();
    this.publish(uri, 0, []);
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private async run(uri: string): Promise<void> {
    const document = this.documents.get(uri);
    if (!document) return;
    const version = document.version;
    let result: Validation;
    try {
      result = await validateConfig(uri, document.getText(), this.facts);
    } catch (error) {
      // A bug here must cost one config its checks, never the server.
      result = {
        diagnostics: [diagnostic({ start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, `the language server could not check this config: ${(error as Error).message}`, 'warning')],
        paths: this.uses.get(uri) ?? new Set(),
      };
    }
    const current = this.documents.get(uri);
    if (!current || current.version !== version) return; // a newer validation is scheduled
    this.uses.set(uri, result.paths);
    this.retain();
    this.publish(uri, version, result.diagnostics);
    // Another config's validation may have dropped a path this one read meanwhile: read it again, watched.
    if ([...result.paths].some((path) => !this.facts.has(path))) this.schedule(uri);
  }

  /** Stop watching paths that no open config names any more. */
  private retain(): void {
    const used = new Set<string>();
    for (const paths of this.uses.values()) for (const path of paths) used.add(path);
    this.facts.retain(used);
  }
}
