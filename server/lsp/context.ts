// Where the cursor is in a config being typed: at a key of some mapping, at a key's value, or at
// an entry of a list. Half-typed text is rarely valid YAML, so YAML is read by indentation, line
// by line, not parsed; JSON is read with a small tokenizer that tolerates a missing tail.
import type { Position, Range } from 'vscode-languageserver';

export type CursorContext =
  /** Typing a key of the mapping at `path` (`[]`: the top level); `siblings` are the keys already there. */
  | { kind: 'key'; path: string[]; prefix: string; range: Range; siblings: string[]; indent: number; quoted: boolean }
  /** Typing the value of the key at `path`. */
  | { kind: 'value'; path: string[]; prefix: string; range: Range; quoted: boolean }
  /** Typing an entry of the list at `path`; `written` are its other entries. */
  | { kind: 'item'; path: string[]; prefix: string; range: Range; written: string[]; quoted: boolean };

const KEY_ONLY = /^(\s*)([\w.-]+)\s*:\s*(?:#.*)?$/;
const WORD = /[^\s,\[\]{}"'#:]*/y;

export function cursorContext(text: string, position: Position, language: 'yaml' | 'json'): CursorContext | null {
  return language === 'json' ? jsonContext(text, position) : yamlContext(text, position);
}

function indentOf(line: string): number {
  return /^ */.exec(line)![0].length;
}

function isBlank(line: string): boolean {
  return /^\s*(#.*)?$/.test(line);
}

/** The keys of the mappings that enclose a line indented by `indent`, outermost first. */
function ancestors(lines: readonly string[], lineIndex: number, indent: number): string[] {
  const path: string[] = [];
  for (let i = lineIndex - 1; i >= 0 && indent > 0; i--) {
    const line = lines[i]!;
    if (isBlank(line)) continue;
    const own = indentOf(line);
    if (own >= indent) continue;
    const key = KEY_ONLY.exec(line);
    if (key) path.unshift(key[2]!);
    indent = own;
  }
  return path;
}

/** Whether `before` (text up to the cursor) ends inside a comment. */
function inComment(before: string): boolean {
  let quote: string | null = null;
  for (let i = 0; i < before.length; i++) {
    const c = before[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(before[i - 1]!))) return true;
  }
  return false;
}

/** A scalar being typed that starts at `start`: its text up to the cursor and the range it spans. */
function token(line: string, lineIndex: number, start: number, cursor: number): { prefix: string; range: Range; quoted: boolean } {
  const quoted = line[start] === '"' || line[start] === "'";
  const from = quoted ? start + 1 : start;
  let end = cursor;
  if (quoted) {
    const close = line.indexOf(line[start]!, cursor);
    end = close < 0 ? cursor : close;
  } else {
    WORD.lastIndex = cursor;
    end = cursor + (WORD.exec(line)?.[0].length ?? 0);
  }
  return {
    prefix: line.slice(from, cursor),
    range: { start: { line: lineIndex, character: from }, end: { line: lineIndex, character: Math.max(end, cursor) } },
    quoted,
  };
}

function yamlContext(text: string, position: Position): CursorContext | null {
  const lines = text.split(/\r?\n/);
  const line = lines[position.line] ?? '';
  const before = line.slice(0, position.character);
  if (inComment(before)) return null;

  // `key: [a, b, pre|` — a flow list on one line.
  const flow = /^(\s*)([\w.-]+)\s*:\s*\[([^\]]*)$/.exec(before);
  if (flow) {
    const open = before.lastIndexOf('[');
    const close = line.indexOf(']', position.character);
    const inside = line.slice(open + 1, close < 0 ? line.length : close);
    const lastComma = before.lastIndexOf(',');
    const start = Math.max(open, lastComma) + 1;
    const leading = /^\s*/.exec(line.slice(start, position.character))![0].length;
    const current = token(line, position.line, start + leading, position.character);
    const written = inside
      .split(',')
      .map((entry) => entry.trim().replace(/^["']|["']$/g, ''))
      .filter((entry) => entry && entry !== current.prefix);
    return { kind: 'item', path: [...ancestors(lines, position.line, flow[1]!.length), flow[2]!], written, ...current };
  }

  // `- pre|` — an entry of a block list; its key is the nearest line above that opens it.
  const dash = /^(\s*)-(\s*)([^\s#]*)$/.exec(before);
  if (dash) {
    const indent = dash[1]!.length;
    const written: string[] = [];
    for (let i = position.line - 1; i >= 0; i--) {
      const above = lines[i]!;
      if (isBlank(above)) continue;
      const item = /^(\s*)-\s*(.*?)\s*(?:#.*)?$/.exec(above);
      if (item && item[1]!.length === indent) {
        written.push(item[2]!.replace(/^["']|["']$/g, ''));
        continue;
      }
      const key = KEY_ONLY.exec(above);
      if (!key || indentOf(above) > indent) return null;
      for (let j = position.line + 1; j < lines.length; j++) {
        const below = /^(\s*)-\s*(.*?)\s*(?:#.*)?$/.exec(lines[j]!);
        if (!below || below[1]!.length !== indent) break;
        written.push(below[2]!.replace(/^["']|["']$/g, ''));
      }
      const path = [...ancestors(lines, i, indentOf(above)), key[2]!];
      return { kind: 'item', path, written: written.filter(Boolean), ...token(line, position.line, indent + 1 + dash[2]!.length, position.character) };
    }
    return null;
  }

  // `  pre|` — a key of the mapping this indentation belongs to.
  const key = /^(\s*)([\w.-]*)$/.exec(before);
  if (key) {
    const indent = key[1]!.length;
    const path = ancestors(lines, position.line, indent);
    return { kind: 'key', path, siblings: siblings(lines, position.line, indent), indent, ...token(line, position.line, indent, position.character) };
  }

  // `key: pre|` — the key's value.
  const value = /^(\s*)([\w.-]+)\s*:(\s*)(.*)$/.exec(before);
  if (value) {
    const start = value[1]!.length + value[2]!.length + before.slice(value[1]!.length + value[2]!.length).indexOf(':') + 1 + value[3]!.length;
    return { kind: 'value', path: [...ancestors(lines, position.line, value[1]!.length), value[2]!], ...token(line, position.line, start, position.character) };
  }
  return null;
}

/** Keys written at `indent` in the same mapping as line `lineIndex` (above and below it). */
function siblings(lines: readonly string[], lineIndex: number, indent: number): string[] {
  const keys: string[] = [];
  for (const step of [-1, 1]) {
    for (let i = lineIndex + step; i >= 0 && i < lines.length; i += step) {
      const line = lines[i]!;
      if (isBlank(line)) continue;
      const own = indentOf(line);
      if (own < indent) break;
      const key = own === indent ? /^\s*([\w.-]+)\s*:/.exec(line) : null;
      if (key) keys.push(key[1]!);
    }
  }
  return keys;
}

interface JsonFrame {
  type: 'object' | 'array';
  /** The key this container is the value of. */
  owner: string | undefined;
  /** Object: the last key read, and whether the next string is a key. */
  key: string | undefined;
  expectingKey: boolean;
  keys: string[];
  items: string[];
}

function jsonContext(text: string, position: Position): CursorContext | null {
  const lines = text.split(/\r?\n/);
  let offset = 0;
  for (let i = 0; i < position.line && i < lines.length; i++) offset += lines[i]!.length + (text[offset + lines[i]!.length] === '\r' ? 2 : 1);
  offset += position.character;

  const stack: JsonFrame[] = [];
  const top = () => stack[stack.length - 1];
  const frame = (type: JsonFrame['type']): JsonFrame => ({ type, owner: top()?.type === 'object' ? top()!.key : top()?.owner, key: undefined, expectingKey: type === 'object', keys: [], items: [] });
  let stringStart = -1;
  let i = 0;
  while (i < offset) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      if (j >= offset) {
        stringStart = i;
        break;
      }
      const value = text.slice(i + 1, j);
      const current = top();
      if (current?.type === 'object' && current.expectingKey) {
        current.key = value;
        current.keys.push(value);
      } else if (current?.type === 'array') current.items.push(value);
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') stack.push(frame(c === '{' ? 'object' : 'array'));
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ':' && top()?.type === 'object') top()!.expectingKey = false;
    else if (c === ',' && top()?.type === 'object') top()!.expectingKey = true;
    i++;
  }
  const current = top();
  if (!current) return null;
  const path = stack
    .slice(1)
    .map((f) => f.owner)
    .filter((owner): owner is string => owner !== undefined);
  const line = lines[position.line] ?? '';
  let tokenInfo: { prefix: string; range: Range; quoted: boolean };
  if (stringStart >= 0) {
    tokenInfo = token(line, position.line, position.character - (offset - stringStart), position.character);
  } else {
    // Between tokens: only a place where a key or a value can start.
    const before = text.slice(0, offset).trimEnd();
    if (!/[{[,:]$/.test(before)) return null;
    tokenInfo = { prefix: '', range: { start: position, end: position }, quoted: false };
  }
  if (current.type === 'array') {
    if (current.owner === undefined) return null;
    return { kind: 'item', path, written: current.items, ...tokenInfo };
  }
  if (current.expectingKey) return { kind: 'key', path, siblings: current.keys, indent: 0, ...tokenInfo };
  return current.key === undefined ? null : { kind: 'value', path: [...path, current.key], ...tokenInfo };
}
