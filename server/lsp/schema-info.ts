// What the config schema says about one key: its documentation, default and allowed values,
// for completion and hover. Everything comes from the zod schema, so the editor can never
// document a key the loader does not accept.
import { z } from 'zod';
import { objectShapeAt } from '../config/load';
import { CONFIG_DEFAULTS } from '../config/schema';

export type FieldKind = 'object' | 'list' | 'boolean' | 'enum' | 'number' | 'string';

export interface FieldInfo {
  /** Dotted, e.g. `data.format`. */
  name: string;
  kind: FieldKind;
  description: string;
  /** Null when the key is required or has no default. */
  defaultValue: unknown;
  required: boolean;
  /** Enum values, or `true`/`false`. */
  values: string[];
}

const DEFAULTS = CONFIG_DEFAULTS as Record<string, unknown>;
const REQUIRED = new Set(['model', 'data', 'data.train']);

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPrefault) {
    current = current.unwrap() as z.ZodType;
  }
  return current;
}

function kindOf(schema: z.ZodType): FieldKind {
  if (schema instanceof z.ZodObject) return 'object';
  if (schema instanceof z.ZodArray) return 'list';
  if (schema instanceof z.ZodBoolean) return 'boolean';
  if (schema instanceof z.ZodEnum) return 'enum';
  if (schema instanceof z.ZodNumber) return 'number';
  return 'string';
}

/** The keys allowed in the mapping at `path` (`[]` for the top level), or null if there is none. */
export function keysAt(path: readonly string[]): string[] | null {
  const shape = objectShapeAt([...path]);
  return shape ? Object.keys(shape) : null;
}

/** The key at `path`, e.g. `['data', 'format']`, or null if the schema has no such key. */
export function fieldAt(path: readonly string[]): FieldInfo | null {
  if (path.length === 0) return null;
  const field = objectShapeAt(path.slice(0, -1))?.[path[path.length - 1]!];
  if (!field) return null;
  const inner = unwrap(field);
  const kind = kindOf(inner);
  const name = path.join('.');
  const defaultValue = kind === 'object' ? null : (path.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], DEFAULTS) ?? null);
  return {
    name,
    kind,
    description: field.description ?? inner.description ?? '',
    defaultValue: REQUIRED.has(name) ? null : defaultValue,
    required: REQUIRED.has(name),
    values: kind === 'enum' ? (inner as z.ZodEnum).options.map(String) : kind === 'boolean' ? ['true', 'false'] : [],
  };
}

/** Markdown: the key's documentation and its default, for hovers and completion items. */
export function fieldMarkdown(info: FieldInfo): string {
  const lines = [`**${info.name}**${info.description ? ` — ${info.description}` : ''}`];
  if (info.required) lines.push('Required.');
  else if (info.defaultValue !== null) lines.push(`Default: \`${formatValue(info.defaultValue)}\``);
  if (info.kind === 'enum') lines.push(`Allowed: ${info.values.map((v) => `\`${v}\``).join(', ')}`);
  return lines.join('\n\n');
}

export function formatValue(value: unknown): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
}
