// Reading an adapter config: YAML or JSON text → a validated config, or issues that each carry
// the exact source range, a message that names the key and the value, and a replacement where
// one is obvious (the language server turns those into diagnostics and quick fixes). A config is
// a user's file, maybe hostile: its size, its nesting and its YAML aliases are bounded before
// anything walks it, and every refusal says where and why.
import { dirname, resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { isAlias, isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Alias, type Document } from 'yaml';
import { z } from 'zod';
import { FileReadError, formatSize, jsonProblem, readTextFile } from '../formats/files';
import { configSchema, type AdapterConfig } from './schema';

/**
 * The largest config read: a config is a few hundred bytes, and a target_modules list naming
 * every module of a 120-layer model some 35 KiB. The YAML parser takes a few milliseconds per
 * KiB, and the editor parses the open config on each keystroke.
 */
export const MAX_CONFIG_BYTES = 64 * 1024;
/** YAML aliases expanded at most (yaml's maxAliasCount): a few are handy, millions are an attack. */
export const MAX_ALIAS_COUNT = 100;
/** Issues reported of one config: the first ones, then how many more. */
export const MAX_ISSUES = 100;
/**
 * Levels of flow nesting ([ and {) and columns of indentation a config may have: it needs three
 * levels (data.fields.prompt) and a few columns. The parser's stack ends near a thousand levels,
 * and it takes seconds to get there.
 */
export const MAX_NESTING = 64;
export const MAX_INDENT = 128;

/**
 * Where the text nests deeper than MAX_NESTING or indents past MAX_INDENT, read without parsing:
 * brackets are counted outside comments (a quoted string holding 64 unbalanced brackets would
 * count too), indentation as the spaces and sequence dashes that start a line.
 */
function nestingProblem(text: string): { offset: number; problem: string } | null {
  let depth = 0;
  let column = 0;
  let lineStart = true;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      lineStart = true;
      comment = false;
      column = 0;
      continue;
    }
    if (comment) continue;
    if (lineStart && (c === ' ' || c === '-')) {
      if (++column > MAX_INDENT) return { offset: i, problem: `indented more than ${MAX_INDENT} columns` };
      continue;
    }
    lineStart = false;
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) comment = true;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_NESTING) return { offset: i, problem: `nested more than ${MAX_NESTING} levels deep` };
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return null;
}

/**
 * Why a config text is not parsed at all, and where: too large, or nested too deep. Null when
 * it can be read.
 */
export function unreadableConfig(text: string): { offset: number; message: string } | null {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) {
    return {
      offset: 0,
      message: `the config is ${formatSize(bytes)}, more than the ${formatSize(MAX_CONFIG_BYTES)} a config may be (one is a few hundred bytes; a target_modules list of every module of a large model, some 35 KiB); it is not checked`,
    };
  }
  const nesting = nestingProblem(text);
  return nesting ? { offset: nesting.offset, message: `${nesting.problem} (a config nests three levels, as in data.fields.prompt); it is not checked` } : null;
}

function positionAt(text: string, offset: number): Position {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length - 1, character: offset - (before.lastIndexOf('\n') + 1) };
}


export interface ParsedYaml {
  doc: Document;
  lines: LineCounter;
}

/** The last few texts parsed, newest last: diagnostics, hover and lenses parse the same text. */
const parsed: { text: string; yaml: ParsedYaml }[] = [];

/**
 * The config text as a YAML document (JSON is YAML), with its line counter; the same object for
 * the same text, so callers must not change it. Callers check unreadableConfig first.
 */
export function parseConfigYaml(text: string): ParsedYaml {
  const hit = parsed.find((entry) => entry.text === text);
  if (hit) return hit.yaml;
  const lines = new LineCounter();
  const yaml = { doc: parseDocument(text, { lineCounter: lines, prettyErrors: false }), lines };
  parsed.push({ text, yaml });
  if (parsed.length > 4) parsed.shift();
  return yaml;
}

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
  if (Array.isArray(value)) return value.length > 1 ? `a list of ${value.length} entries` : 'a list';
  if (typeof value === 'object') return 'a mapping';
  // YAML's spellings: JSON has none for these
  if (typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? '.nan' : value > 0 ? '.inf' : '-.inf';
  if (typeof value === 'string' && value.length > 60) return `a string of ${value.length} characters, ${JSON.stringify(value.slice(0, 40))}…`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** The sentence of a key's description that says why its bound is what it is ("At most …"). */
function boundReason(path: Path): string | null {
  const description = objectShapeAt(path.slice(0, -1))?.[String(path[path.length - 1])]?.description;
  return /At most [^]*?\.(?= |$)/.exec(description ?? '')?.[0] ?? null;
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

/**
 * The issues less those a tighter bound on the same value already says: an integer's implied
 * safe-integer bounds (±2⁵³ − 1) beside the schema's own.
 */
function tightest(all: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const bound = (issue: z.core.$ZodIssue) => (issue.code === 'too_big' ? Number(issue.maximum) : issue.code === 'too_small' ? -Number(issue.minimum) : null);
  const best = new Map<string, number>();
  for (const issue of all) {
    const b = bound(issue);
    const key = `${issue.code} ${issue.path.map(String).join('.')}`;
    if (b !== null && b < (best.get(key) ?? Infinity)) best.set(key, b);
  }
  return all.filter((issue) => {
    const b = bound(issue);
    return b === null || b === best.get(`${issue.code} ${issue.path.map(String).join('.')}`);
  });
}

function schemaIssues(error: z.ZodError, value: unknown, source: SourceMap): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of tightest(error.issues)) {
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
        const nonFinite = typeof found === 'number' && !Number.isFinite(found);
        const doc = objectShapeAt(path.slice(0, -1))?.[String(path[path.length - 1])]?.description;
        issues.push({
          severity: 'error',
          path,
          range: missing ? source.valueRange(path.slice(0, -1)) : source.valueRange(path),
          message: missing
            ? `missing required key "${String(path[path.length - 1])}"${path.length > 1 ? ` in ${dotted(path.slice(0, -1))}` : ''}${doc ? `: ${doc}` : ''}`
            : `${at}: expected ${nonFinite ? 'a finite number' : issue.expected}, got ${describeValue(found)}`,
        });
        break;
      }
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const relation = issue.code === 'too_small' ? (issue.inclusive ? '≥' : '>') : issue.inclusive ? '≤' : '<';
        const what = issue.origin === 'array' ? 'entries' : issue.origin === 'string' ? 'characters' : 'a value';
        const reason = issue.code === 'too_big' ? boundReason(path) : null;
        issues.push({
          severity: 'error',
          path,
          range: source.valueRange(path),
          message: `${at}: needs ${what} ${relation} ${String(bound)}, got ${describeValue(found)}${reason ? `; ${reason}` : ''}`,
        });
        break;
      }
      case 'invalid_union': {
        // One alternative takes the value's type (a list too long, a number too large): its complaints are the ones to show.
        const typed = issue.errors.filter((branch) => branch[0] !== undefined && branch[0].code !== 'invalid_type' && branch[0].code !== 'invalid_value');
        if (typed.length === 1) {
          const within = typed[0]!.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }));
          issues.push(...schemaIssues(new z.ZodError(within), value, source));
          break;
        }
        // Else each alternative's first complaint says what it takes: a type, or the values it allows.
        const expected = [...new Set(issue.errors.map((branch) => expectedBy(branch[0])).filter((e): e is string => e !== null))];
        issues.push({
          severity: 'error',
          path,
          range: source.valueRange(path),
          message: `${at}: expected ${expected.join(' or ')}, got ${describeValue(found)}`,
        });
        break;
      }
      case 'custom':
        // the schema's own checks word their message whole
        issues.push({ severity: 'error', path, range: source.valueRange(path), message: `${at}: ${issue.message}` });
        break;
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

/** The first MAX_ISSUES issues, and one more at the first of the rest that says how many are left. */
function capped(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_ISSUES) return issues;
  const rest = issues.slice(MAX_ISSUES);
  return [...issues.slice(0, MAX_ISSUES), { ...rest[0]!, message: `${rest.length} more problems in this config, the first: ${rest[0]!.message}` }];
}

/** The config's plain values, or the issue that stops it: an alias without its anchor, or aliases that expand without end. */
function valueOf(doc: Document, source: SourceMap): { value: unknown } | { issue: ConfigIssue } {
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (error) {
    if (!(error instanceof ReferenceError)) throw error;
    let first: Alias | undefined;
    visit(doc, { Alias: (_key, node) => ((first ??= node), visit.BREAK) });
    const range = source.rangeOf(first?.range ? [first.range[0], first.range[1]] : undefined);
    const message = /Excessive alias count/.test(error.message)
      ? `YAML aliases: expanding them takes more than ${MAX_ALIAS_COUNT} copies (an alias of aliases of aliases: a "billion laughs"); write the values out`
      : `YAML alias${first && isAlias(first) ? ` *${first.source}` : ''}: ${error.message.replace(/^Unresolved alias \(the anchor must be set before the alias\)/, 'no anchor of that name before it')}`;
    return { issue: { severity: 'error', path: [], range, message } };
  }
}

/** Parses and validates config text; never throws on bad input. */
export function parseConfigText(text: string, fileName: string): ParsedConfig {
  const json = fileName.endsWith('.json');
  const unreadable = unreadableConfig(text);
  if (unreadable) {
    const at = positionAt(text, unreadable.offset);
    return { config: null, issues: [{ severity: 'error', path: [], range: { start: at, end: at }, message: unreadable.message }] };
  }
  const { doc, lines } = parseConfigYaml(text);
  const source = new SourceMap(doc, lines);
  // past the parser's stack every level reports the same: keep the first
  const deep = doc.errors.find((error) => error.code === 'RESOURCE_EXHAUSTION');
  const syntax: ConfigIssue[] = (deep ? [deep] : doc.errors).map((error) => ({
    severity: 'error',
    path: [],
    range: source.rangeOf(error.pos),
    message:
      error === deep
        ? `${json ? 'JSON' : 'YAML'} syntax: nested deeper than the parser can follow (a config nests three levels, as in data.fields.prompt)`
        : `${json ? 'JSON' : 'YAML'} syntax: ${error.message.split('\n')[0]}`,
  }));
  if (json && syntax.length === 0) {
    try {
      JSON.parse(text);
    } catch (error) {
      const offset = Number(/position (\d+)/.exec(String(error))?.[1] ?? 0);
      syntax.push({ severity: 'error', path: [], range: source.rangeOf([offset, offset + 1]), message: `JSON syntax: ${jsonProblem(error, text)}` });
    }
  }
  if (syntax.length) return { config: null, issues: capped(syntax) };
  const plain = valueOf(doc, source);
  if ('issue' in plain) return { config: null, issues: [plain.issue] };
  const value = plain.value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      config: null,
      issues: [{ severity: 'error', path: [], range: source.rangeOf([0, text.length]), message: `the config must be a mapping of keys (model, method, r, data, …), got ${describeValue(value)}` }],
    };
  }
  const checked = configSchema.safeParse(value);
  if (!checked.success) return { config: null, issues: capped(schemaIssues(checked.error, value, source)) };
  return { config: checked.data, issues: surprises(checked.data, value as Record<string, unknown>, source) };
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
    text = await readTextFile(path, 'a config', MAX_CONFIG_BYTES, 'a config is a few hundred bytes');
  } catch (error) {
    if (error instanceof FileReadError) throw new Error(error.message);
    throw error;
  }
  const { config, issues } = parseConfigText(text, path);
  if (!config) throw new ConfigError(path, issues.filter((issue) => issue.severity === 'error'));
  return resolveConfigPaths(config, path);
}
