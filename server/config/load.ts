// Reading an adapter config: YAML or JSON text → a validated config, or issues that each carry
// the exact source range, a message that names the key and the value, and a replacement where
// one is obvious (the language server turns those into diagnostics and quick fixes).
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { configSchema, type AdapterConfig } from './schema';

export interface Position {
  /** 0-based, as LSP counts. */
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface ConfigIssue {
  severity: 'error' | 'warning';
  message: string;
  path: (string | number)[];
  range: Range;
  /** Text that fixes the issue when it replaces `range`. */
  replacement?: string;
}

export interface ParsedConfig {
  /** Null when any issue is an error. */
  config: AdapterConfig | null;
  issues: ConfigIssue[];
}

/** A config with every path made absolute against the config file's folder. */
export type ResolvedConfig = AdapterConfig & { configPath: string };

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(issues.map((issue) => formatIssue(file, issue)).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatIssue(file: string, issue: ConfigIssue): string {
  return `${file}:${issue.range.start.line + 1}:${issue.range.start.character + 1}: ${issue.severity}: ${issue.message}`;
}

type Path = (string | number)[];

class SourceMap {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private position(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line: line - 1, character: col - 1 };
  }

  rangeOf(offsets: readonly [number, number] | undefined): Range {
    const [start, end] = offsets ?? [0, 0];
    return { start: this.position(start), end: this.position(end) };
  }

  /** The key's own text, e.g. `lerning_rate` in `lerning_rate: 3e-4`. */
  keyRange(path: Path): Range | null {
    const key = path[path.length - 1];
    const parent = path.length > 1 ? this.doc.getIn(path.slice(0, -1), true) : this.doc.contents;
    if (!isMap(parent)) return null;
    const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key);
    return pair && isScalar(pair.key) && pair.key.range ? this.rangeOf([pair.key.range[0], pair.key.range[1]]) : null;
  }

  /** The value at `path`, or else the nearest enclosing key that exists, or the document start. */
  valueRange(path: Path): Range {
    for (let depth = path.length; depth > 0; depth--) {
      const node = this.doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.rangeOf([node.range[0], node.range[1]]);
      const key = this.keyRange(path.slice(0, depth));
      if (key) return key;
    }
    return this.rangeOf([0, 0]);
  }
}

function valueAt(root: unknown, path: Path): unknown {
  return path.reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>)[key] : undefined), root);
}

/** The object schema at `path` inside the config schema, to list the keys allowed there. */
export function objectShapeAt(path: Path): Record<string, z.ZodType> | null {
  let schema: z.ZodType = configSchema;
  for (const key of path) {
    const shape = unwrapObject(schema);
    if (!shape || typeof key !== 'string' || !(key in shape)) return null;
    schema = shape[key]!;
  }
  return unwrapObject(schema);
}

function unwrapObject(schema: z.ZodType): Record<string, z.ZodType> | null {
  let current: z.ZodType = schema;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPrefault) {
    current = current.unwrap() as z.ZodType;
  }
  return current instanceof z.ZodObject ? (current.shape as Record<string, z.ZodType>) : null;
}

/** A key written at the wrong level: the section of the schema where a close key lives. */
function homeOf(word: string, notAt: Path): { key: string; path: Path } | undefined {
  const sections = Object.keys(objectShapeAt([]) ?? {})
    .map((name): Path => [name])
    .filter((path) => objectShapeAt(path) && dotted(path) !== dotted(notAt));
  for (const path of [[] as Path, ...sections].filter((p) => dotted(p) !== dotted(notAt))) {
    const key = suggestion(word, Object.keys(objectShapeAt(path) ?? {}));
    if (key) return { key, path };
  }
  return undefined;
}

function suggestion(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates as string[]);
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function dotted(path: Path): string {
  return path.length ? path.join('.') : 'the config';
}

/** What a schema alternative that rejected a value takes, from its first issue. */
function expectedBy(issue: z.core.$ZodIssue | undefined): string | null {
  if (issue?.code === 'invalid_type') return issue.expected;
  if (issue?.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  return null;
}

function schemaIssues(error: z.ZodError, value: unknown, source: SourceMap): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((key): key is string | number => typeof key !== 'symbol');
    const found = valueAt(value, path);
    const at = dotted(path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const allowed = Object.keys(objectShapeAt(path) ?? {});
        for (const key of issue.keys) {
          const guess = suggestion(key, allowed);
          const elsewhere = guess ? undefined : homeOf(key, path);
          const hint = guess
            ? `did you mean "${guess}"?`
            : elsewhere
              ? `did you mean "${elsewhere.key}" under ${dotted(elsewhere.path)}:?`
              : `allowed: ${allowed.join(', ')}`;
          issues.push({
            severity: 'error',
            path: [...path, key],
            range: source.keyRange([...path, key]) ?? source.valueRange(path),
            message: `unknown key "${key}"${path.length ? ` in ${at}` : ''}; ${hint}`,
            ...(guess ? { replacement: guess } : {}),
          });
        }
        break;
      }
      case 'invalid_value': {
        const allowed = issue.values.map(String);
        const guess = typeof found === 'string' ? suggestion(found, allowed) : undefined;
        issues.push({
          severity: 'error',
          path,
          range: source.valueRange(path),
          message: `${at}: ${describeValue(found)} is not allowed; allowed: ${allowed.join(', ')}${guess ? `; did you mean "${guess}"?` : ''}`,
          ...(guess ? { replacement: guess } : {}),
        });
        break;
      }
      case 'invalid_type': {
        const missing = found === undefined;
        const doc = objectShapeAt(path.slice(0, -1))?.[String(path[path.length - 1])]?.description;
        issues.push({
          severity: 'error',
          path,
          range: missing ? source.valueRange(path.slice(0, -1)) : source.valueRange(path),
          message: missing
            ? `missing required key "${String(path[path.length - 1])}"${path.length > 1 ? ` in ${dotted(path.slice(0, -1))}` : ''}${doc ? `: ${doc}` : ''}`
            : `${at}: expected ${issue.expected}, got ${describeValue(found)}`,
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const relation = issue.code === 'too_small' ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<';
        const what = issue.origin === 'array' ? 'entries' : issue.origin === 'string' ? 'characters' : 'a value';
        issues.push({
          severity: 'error',
          path,
          range: source.valueRange(path),
          message: `${at}: needs ${what} ${relation} ${String(bound)}, got ${describeValue(found)}`,
        });
        break;
      }
      case 'invalid_union': {
        // each alternative's first complaint says what it takes: a type, or the values it allows
        const expected = [...new Set(issue.errors.map((branch) => expectedBy(branch[0])).filter((e): e is string => e !== null))];
        issues.push({
          severity: 'error',
          path,
          range: source.valueRange(path),
          message: `${at}: expected ${expected.join(' or ')}, got ${describeValue(found)}`,
        });
        break;
      }
      default:
        issues.push({ severity: 'error', path, range: source.valueRange(path), message: `${at}: ${issue.message}, got ${describeValue(found)}` });
    }
  }
  return issues;
}

// Legal, but rarely what the user meant: each gets a warning, never an error.
function surprises(config: AdapterConfig, written: Record<string, unknown>, source: SourceMap): ConfigIssue[] {
  const warnings: ConfigIssue[] = [];
  const warn = (path: Path, message: string) => warnings.push({ severity: 'warning', path, range: source.valueRange(path), message });
  const ratio = config.alpha / config.r;
  if (ratio < 0.5 || ratio > 4) {
    warn(['alpha'], `alpha / r = ${config.alpha} / ${config.r} = ${ratio.toPrecision(3)} is far from the usual 1–2 (the reference uses 32 / 16 = 2); the update is scaled by it`);
  }
  if ('chain_length' in written && config.method !== 'linchain') warn(['chain_length'], `chain_length is ignored unless method is linchain (method is ${config.method})`);
  if ('mixer_init' in written && config.method === 'lora') warn(['mixer_init'], 'mixer_init is ignored: LoRA has no mixer');
  const training = (written.training ?? {}) as Record<string, unknown>;
  if ('max_steps' in training && 'epochs' in training) warn(['training', 'epochs'], 'epochs is ignored because max_steps is set');
  if (config.training.max_steps !== undefined && config.training.warmup_steps >= config.training.max_steps) {
    warn(['training', 'warmup_steps'], `warmup_steps (${config.training.warmup_steps}) ≥ max_steps (${config.training.max_steps}): the learning rate never reaches its peak`);
  }
  if (config.data.eval !== undefined && config.data.eval_split > 0) warn(['data', 'eval_split'], 'eval_split is ignored because an eval file is given');
  return warnings;
}

/** Parses and validates config text; never throws on bad input. */
export function parseConfigText(text: string, fileName: string): ParsedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const source = new SourceMap(doc, lines);
  const syntax: ConfigIssue[] = doc.errors.map((error) => ({
    severity: 'error',
    path: [],
    range: source.rangeOf(error.pos),
    message: `${fileName.endsWith('.json') ? 'JSON' : 'YAML'} syntax: ${error.message.split('\n')[0]}`,
  }));
  if (fileName.endsWith('.json') && syntax.length === 0) {
    try {
      JSON.parse(text);
    } catch (error) {
      const offset = Number(/position (\d+)/.exec(String(error))?.[1] ?? 0);
      syntax.push({ severity: 'error', path: [], range: source.rangeOf([offset, offset + 1]), message: `JSON syntax: ${(error as Error).message}` });
    }
  }
  if (syntax.length) return { config: null, issues: syntax };
  const value: unknown = doc.toJS();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      config: null,
      issues: [{ severity: 'error', path: [], range: source.rangeOf([0, text.length]), message: `the config must be a mapping of keys (model, method, r, data, …), got ${describeValue(value)}` }],
    };
  }
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) return { config: null, issues: schemaIssues(parsed.error, value, source) };
  return { config: parsed.data, issues: surprises(parsed.data, value as Record<string, unknown>, source) };
}

/** Makes the config's paths absolute, relative to the folder of the config file. */
export function resolveConfigPaths(config: AdapterConfig, configPath: string): ResolvedConfig {
  const base = dirname(resolve(configPath));
  const at = (path: string) => resolve(base, path);
  return {
    ...config,
    configPath: resolve(configPath),
    model: at(config.model),
    data: { ...config.data, train: at(config.data.train), ...(config.data.eval !== undefined ? { eval: at(config.data.eval) } : {}) },
    output: { ...config.output, runs_dir: at(config.output.runs_dir) },
  };
}

/** Reads, validates and resolves a config file; throws ConfigError listing every error. */
export async function loadConfigFile(path: string): Promise<ResolvedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read the config (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const { config, issues } = parseConfigText(text, path);
  if (!config) throw new ConfigError(path, issues.filter((issue) => issue.severity === 'error'));
  return resolveConfigPaths(config, path);
}
