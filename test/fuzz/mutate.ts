// Seeded mutations of the files a user hands the CLI: JSON values, JSON Lines, bytes and
// safetensors files. Each mutation says what it did, so that a failing case names its input.
import seedrandom from 'seedrandom';

export type Random = () => number;

export function seeded(seed: string): Random {
  return seedrandom(seed);
}

export const int = (random: Random, low: number, high: number) => low + Math.floor(random() * (high - low + 1));
export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** A result: the mutated content and what was done. */
export interface Mutated<T> {
  value: T;
  what: string;
}

/** Values a hostile or careless file holds where a number, a string or a list belongs. */
export const HOSTILE_VALUES: readonly unknown[] = [
  0, -1, 1, 2, 3, 7, 0.5, -0.5, 1e9, -1e9, 2 ** 31 - 1, 2 ** 53, 1e308, 'x', '', ' ', '\u0000', '\ud800', 'é'.repeat(3), null, true, false, [], {}, [1, 2], [[]], { a: 1 }, ['q_proj'],
];

/** Deeply nested arrays, as text: JSON parsers that recurse overflow their stack on these. */
export function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** Every path to a value inside `json` up to `depth` levels, e.g. ['model', 'vocab', 'a']. */
function paths(json: unknown, depth: number, prefix: (string | number)[] = []): (string | number)[][] {
  if (depth === 0 || json === null || typeof json !== 'object') return [];
  const keys: (string | number)[] = Array.isArray(json) ? json.map((_, i) => i).slice(0, 20) : Object.keys(json).slice(0, 40);
  return keys.flatMap((key) => [[...prefix, key], ...paths((json as Record<string | number, unknown>)[key], depth - 1, [...prefix, key])]);
}

/** A copy of `json` with one value, at a random path up to `depth` deep, replaced by a hostile one or deleted. */
export function mutateJson(random: Random, json: unknown, depth: number, values: readonly unknown[] = HOSTILE_VALUES): Mutated<unknown> {
  const copy = structuredClone(json);
  const candidates = paths(copy, depth);
  if (candidates.length === 0) return { value: pick(random, values), what: 'replaced the whole value' };
  const path = pick(random, candidates);
  const parent = path.slice(0, -1).reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], copy) as Record<string | number, unknown>;
  const key = path.at(-1)!;
  const label = path.map(String).join('.');
  if (random() < 0.2 && !Array.isArray(parent)) {
    delete parent[key];
    return { value: copy, what: `deleted ${label}` };
  }
  const value = random() < 0.1 ? JSON.parse(deepJson(int(random, 2, 6))) : pick(random, values);
  parent[key] = value;
  return { value: copy, what: `set ${label} to ${JSON.stringify(value)?.slice(0, 40)}` };
}

/** Byte-level damage to a text file: cut short, invalid UTF-8, NUL bytes, garbage. */
export function damageBytes(random: Random, bytes: Buffer): Mutated<Buffer> {
  const at = int(random, 0, Math.max(0, bytes.length - 1));
  switch (int(random, 0, 3)) {
    case 0:
      return { value: bytes.subarray(0, at), what: `cut at byte ${at}` };
    case 1: {
      const bad = pick(random, [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]);
      return { value: Buffer.concat([bytes.subarray(0, at), Buffer.from(bad), bytes.subarray(at)]), what: `invalid UTF-8 ${Buffer.from(bad).toString('hex')} at byte ${at}` };
    }
    case 2:
      return { value: Buffer.concat([bytes.subarray(0, at), Buffer.alloc(int(random, 1, 64)), bytes.subarray(at)]), what: `NUL bytes at byte ${at}` };
    default: {
      const garbage = Buffer.from(Array.from({ length: int(random, 1, 200) }, () => int(random, 0, 255)));
      return { value: Buffer.concat([bytes.subarray(0, at), garbage, bytes.subarray(at + garbage.length)]), what: `${garbage.length} random bytes at byte ${at}` };
    }
  }
}

/** The parts of a safetensors file: its header as JSON and the data after it. */
export function splitSafetensors(bytes: Buffer): { header: Record<string, unknown>; data: Buffer } {
  const length = Number(bytes.readBigUInt64LE(0));
  return { header: JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>, data: bytes.subarray(8 + length) };
}

export function joinSafetensors(header: Buffer, data: Buffer, declared = BigInt(header.length)): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declared);
  return Buffer.concat([prefix, header, data]);
}

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I32', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'Float', 7, null];
const SHAPES: readonly unknown[] = [[], [0], [1], [2 ** 40, 2 ** 40], [2 ** 53, 2], [-1, 4], [1.5, 2], ['2', '2'], [1, 1, 1, 1, 1], null, 'x'];

/** A safetensors file with its header or its framing damaged as a hostile or broken writer would. */
export function mutateSafetensors(random: Random, bytes: Buffer): Mutated<Buffer> {
  const { header, data } = splitSafetensors(bytes);
  const names = Object.keys(header).filter((name) => name !== '__metadata__');
  const name = pick(random, names);
  const entry = { ...(header[name] as { dtype: unknown; shape: number[]; data_offsets: [number, number] }) };
  const rewrite = (what: string, declared?: bigint) => {
    const text = Buffer.from(JSON.stringify(header));
    return { value: joinSafetensors(text, data, declared), what };
  };
  switch (int(random, 0, 11)) {
    case 0: {
      const at = int(random, 0, bytes.length - 1);
      return { value: bytes.subarray(0, at), what: `truncated at byte ${at} of ${bytes.length}` };
    }
    case 1: {
      const declared = pick(random, [0n, 1n, 2n ** 64n - 1n, 100_000_001n, BigInt(bytes.length), BigInt(Number(bytes.readBigUInt64LE(0)) + int(random, -16, 16))]);
      return rewrite(`header length declared as ${declared}`, declared);
    }
    case 2:
      header[name] = { ...entry, dtype: pick(random, DTYPES) };
      return rewrite(`${name}: dtype ${JSON.stringify((header[name] as { dtype: unknown }).dtype)}`);
    case 3:
      header[name] = { ...entry, shape: pick(random, SHAPES) };
      return rewrite(`${name}: shape ${JSON.stringify((header[name] as { shape: unknown }).shape)}`);
    case 4: {
      const [begin, end] = entry.data_offsets;
      const offsets = pick(random, [[end, begin], [0, 0], [begin, end + 4], [begin + 4, end + 4], [begin, data.length + 1], [0, 2 ** 53], [-4, end], [begin, 'x'], [begin]]);
      header[name] = { ...entry, data_offsets: offsets };
      return rewrite(`${name}: data_offsets ${JSON.stringify(offsets)}`);
    }
    case 5:
      delete header[name];
      return rewrite(`tensor ${name} deleted from the header`);
    case 6:
      header[`${name}.extra`] = entry;
      return rewrite(`a second tensor at ${name}'s bytes`);
    case 7:
      header.__metadata__ = pick(random, [{ format: 5 }, 'pt', [1], { nested: { a: 'b' } }]);
      return rewrite(`__metadata__ ${JSON.stringify(header.__metadata__)}`);
    case 8: {
      const text = Buffer.from(JSON.stringify(header));
      const at = int(random, 0, text.length - 1);
      text[at] = pick(random, [0xff, 0x00, 0x22, 0x7b, 0x5d]);
      return { value: joinSafetensors(text, data), what: `header byte ${at} set to ${text[at]!.toString(16)}` };
    }
    case 9: {
      // written as text: JSON.stringify recurses, and would overflow on the value itself
      const text = Buffer.from(JSON.stringify({ ...header, [name]: 0 }).replace(`${JSON.stringify(name)}:0`, `${JSON.stringify(name)}:${deepJson(int(random, 100, 100_000))}`));
      return { value: joinSafetensors(text, data), what: `${name}: a deeply nested value` };
    }
    case 10:
      header[name] = { ...entry, dtype: pick(random, DTYPES), shape: pick(random, SHAPES) };
      return rewrite(`${name}: dtype and shape changed`);
    default: {
      const padded = Buffer.from(`${JSON.stringify(header)}${' '.repeat(int(random, 1, 4096))}`);
      return { value: joinSafetensors(padded, data.subarray(0, int(random, 0, data.length))), what: 'header padded, data cut short' };
    }
  }
}
