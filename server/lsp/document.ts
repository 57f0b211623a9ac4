// One open config as the language features see it: its file path, its language, and its values
// with their source ranges. JSON is parsed as YAML (a subset), as the loader does, so both
// formats share one source map. A config too large or too deeply nested to read
// (unreadableConfig) reads as one with no values: the features that read values offer nothing.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Position, Range } from 'vscode-languageserver';
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node } from 'yaml';
import { objectShapeAt, parseConfigYaml, unreadableConfig } from '../config/load';

export type ConfigLanguage = 'yaml' | 'json';

export function languageOf(uri: string): ConfigLanguage {
  return uri.endsWith('.json') ? 'json' : 'yaml';
}

/** The file behind a `file:` URI, or null (an untitled buffer has no folder to resolve paths against). */
export function filePathOf(uri: string): string | null {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : null;
  } catch {
    return null;
  }
}

/** A path written in the config, made absolute against the config's folder. */
export function resolveFrom(configPath: string, written: string): string {
  return resolve(dirname(configPath), written);
}

export interface Located<T> {
  value: T;
  range: Range;
  /** The written text, quotes included. */
  source: string;
}

export class ConfigSource {
  private readonly doc: Document;
  private readonly lines: LineCounter;
  /** Whether the text is read at all (see unreadableConfig). */
  private readonly read: boolean;

  constructor(readonly text: string) {
    this.read = unreadableConfig(text) === null;
    ({ doc: this.doc, lines: this.lines } = this.read ? parseConfigYaml(text) : { doc: new Document(null), lines: new LineCounter() });
  }

  get valid(): boolean {
    return this.read && this.doc.errors.length === 0;
  }

  position(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line: line - 1, character: col - 1 };
  }

  offset(position: Position): number {
    const starts = this.lines.lineStarts;
    return Math.min((starts[position.line] ?? this.text.length) + position.character, this.text.length);
  }

  private located<T>(node: Node | null | undefined, value: T): Located<T> | null {
    if (!node?.range) return null;
    const [start, end] = node.range;
    return { value, range: { start: this.position(start), end: this.position(end) }, source: this.text.slice(start, end) };
  }

  /** The scalar at `path` with its range, or null when absent or not a scalar. */
  scalar(path: readonly string[]): Located<unknown> | null {
    const node = this.doc.getIn(path, true);
    return isScalar(node) ? this.located(node, node.value) : null;
  }

  /**
   * The number written at `path` if the schema accepts it there, else `fallback`: a value the
   * schema refuses (reported on its own) never reaches an estimate, so 1e20 examples per batch
   * cannot.
   */
  accepted(path: readonly string[], fallback: number): number {
    const value = this.acceptedValue<unknown>(path, fallback);
    return typeof value === 'number' ? value : fallback;
  }

  /** The value written at `path` as the schema reads it (defaults filled) if it accepts it there, else `fallback`. */
  acceptedValue<T>(path: readonly string[], fallback: T): T {
    const node = this.scalar(path);
    const field = objectShapeAt(path.slice(0, -1))?.[path[path.length - 1]!];
    const parsed = node && field?.safeParse(node.value);
    return parsed?.success ? (parsed.data as T) : fallback;
  }

  /** Whether `path` is written at all. */
  has(path: readonly string[]): boolean {
    return this.doc.hasIn(path);
  }

  /** The entries of the list at `path`, each with its range; null when there is no list there. */
  list(path: readonly string[]): Located<unknown>[] | null {
    const node = this.doc.getIn(path, true);
    if (!isSeq(node)) return null;
    return node.items.flatMap((item) => (isScalar(item) ? [this.located(item, item.value)!] : []));
  }

  /** The key path under the cursor: on a key (`onKey`), or on a value or list entry of it. */
  pathAt(position: Position): { path: string[]; onKey: boolean; range: Range } | null {
    const offset = this.offset(position);
    const within = (node: Node | null | undefined): node is Node => !!node?.range && node.range[0] <= offset && offset <= node.range[1];
    let node: unknown = this.doc.contents;
    const path: string[] = [];
    while (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && (within(item.key) || within(item.value as Node)));
      if (!pair || !isScalar(pair.key)) return null;
      const key = String(pair.key.value);
      path.push(key);
      if (within(pair.key)) return { path, onKey: true, range: this.located(pair.key, key)!.range };
      node = pair.value;
      if (isSeq(node)) {
        const item = node.items.find((entry) => within(entry as Node));
        return { path, onKey: false, range: this.located((item ?? node) as Node, null)!.range };
      }
      if (isScalar(node)) return { path, onKey: false, range: this.located(node, null)!.range };
    }
    return null;
  }
}

/** `replacement` written the way `source` was: quoted if it was quoted (JSON needs it). */
export function quotedLike(source: string, replacement: string): string {
  if (source.startsWith('"')) return JSON.stringify(replacement);
  if (source.startsWith("'")) return `'${replacement.replace(/'/g, "''")}'`;
  return replacement;
}

/**
 * The `model` value as written, read with a pattern rather than a parser: completion runs on
 * half-typed text that often does not parse.
 */
export function writtenModel(text: string, language: ConfigLanguage): string | null {
  const found = language === 'json' ? /"model"\s*:\s*"((?:[^"\\\n]|\\.)+)"/.exec(text) : /^model\s*:\s*(["']?)([^"'#\n]+?)\1\s*(?:#.*)?$/m.exec(text);
  if (!found) return null;
  return language === 'json' ? (JSON.parse(`"${found[1]}"`) as string) : found[2]!;
}
