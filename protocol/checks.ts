// Checking a message that crossed a boundary before anything acts on it: the webview's messages
// (webview.ts) and the editor's requests to the server (editor.ts). Each check names where in
// the message it looked and why it refused; a value is quoted at most 80 characters.
// No DOM and no Node types: this file compiles under both.

export type Parsed<T> = { ok: true; message: T } | { ok: false; error: string };

export class Invalid extends Error {}

export function fail(what: string): never {
  throw new Invalid(what);
}

/** `check(value)`, or the first thing it refused. */
export function parsed<T>(check: (value: unknown) => T, value: unknown): Parsed<T> {
  try {
    return { ok: true, message: check(value) };
  } catch (error) {
    return { ok: false, error: error instanceof Invalid ? error.message : `invalid message: ${String(error)}` };
  }
}

export type Obj = Record<string, unknown>;

export function quoted(value: unknown): string {
  return (JSON.stringify(value) ?? String(value)).slice(0, 80);
}

export function object(value: unknown, where: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: expected an object`);
  return value as Obj;
}

/** Refuses keys beyond `allowed`: nothing rides along unvalidated. */
export function exactKeys(o: Obj, where: string, required: readonly string[], optional: readonly string[] = []): void {
  for (const key of required) if (!Object.hasOwn(o, key)) fail(`${where}: missing "${key}"`);
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) fail(`${where}: unexpected ${quoted(key)}`);
  }
}

export function string(value: unknown, where: string, maxLength: number): string {
  if (typeof value !== 'string') fail(`${where}: expected a string`);
  if (value.length > maxLength) fail(`${where}: longer than ${maxLength} characters (${value.length})`);
  return value;
}

export function finite(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${where}: expected a finite number, got ${quoted(value)}`);
  return value;
}

export function count(value: unknown, where: string): number {
  const n = finite(value, where);
  if (!Number.isInteger(n) || n < 0) fail(`${where}: expected a whole number ≥ 0, got ${n}`);
  return n;
}

/** A whole number from `min` to `max`. */
export function integer(value: unknown, where: string, min: number, max: number): number {
  const n = finite(value, where);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${where}: expected a whole number from ${min} to ${max}, got ${n}`);
  return n;
}

export function boolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') fail(`${where}: expected true or false`);
  return value;
}

export function oneOf<T extends string>(value: unknown, options: readonly T[], where: string): T {
  if (typeof value !== 'string' || !options.includes(value as T)) fail(`${where}: expected one of ${options.join(', ')}`);
  return value as T;
}

/** A list of at most `max` values, each checked by `item`. */
export function list<T>(value: unknown, where: string, min: number, max: number, item: (value: unknown, where: string) => T): T[] {
  if (!Array.isArray(value)) fail(`${where}: expected a list`);
  if (value.length < min || value.length > max) fail(`${where}: expected ${min} to ${max} entries, got ${value.length}`);
  return value.map((entry, i) => item(entry, `${where}[${i}]`));
}
