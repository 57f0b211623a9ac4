// Seeded mutations of a training config (*.moslora.yaml) as a hostile or careless user writes it:
// a value replaced, a regular expression in target_modules that backtracks, a huge or
// non-finite number at a numeric key, nesting deeper than a parser's stack, a file of 10 MB,
// aliases that multiply (a billion laughs), YAML tags and duplicate keys, damaged bytes. Each
// mutation says what it did, so that a failing case names its input.
import { stringify } from 'yaml';
import { damageBytes, HOSTILE_VALUES, int, mutateJson, pick, type Mutated, type Random } from './mutate';

/** Keys the mutations leave as they are: they bound how long a surviving config trains, and where it writes. */
const KEPT = [['training', 'max_steps'], ['output', 'runs_dir'], ['output', 'run_name']] as const;

/** The numeric keys of the config, as paths. */
const NUMERIC_KEYS = [
  ['r'], ['alpha'], ['dropout'], ['chain_length'],
  ['data', 'max_length'], ['data', 'eval_split'],
  ['training', 'batch_size'], ['training', 'gradient_accumulation'], ['training', 'workers'], ['training', 'learning_rate'],
  ['training', 'warmup_steps'], ['training', 'weight_decay'], ['training', 'grad_clip'], ['training', 'seed'], ['training', 'log_interval'],
  ['training', 'eval_interval'], ['training', 'checkpoint_interval'], ['training', 'checkpoints_kept'], ['training', 'mixer_interval'],
] as const;

/** Numbers as YAML writes them: huge, past 2^53, negative, tiny, and the non-finite .nan and .inf. */
const HOSTILE_NUMBERS = ['10000000', '2147483647', '1e20', '1e308', '9007199254740993', '-1', '0', '0.5', '1e-320', '.nan', '.inf', '-.inf', '0x7fffffff', '1_000_000'];

/** Patterns whose backtracking matcher takes exponential time on a module name, and patterns that are not expressions. */
const PATTERNS = [
  '(.*.*)*y', '(a+)+$', '(.*)*x$', '^(([a-z])+.)+[A-Z]([a-z])+$', '(q|q_)*z', '.*', '.*_proj', 'model\\.layers\\.0\\..*', '^q_proj$',
  '[', '(?<=x)q', '\\1', 'q_proj|', 'x{99999}', '(?P<n>q)', '\\p{L}+', '', ' ', 'all-linear',
];

function setPath(object: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = object;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}

function getPath(object: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), object);
}

/** `text` with the YAML value of `key` (a top-level or second-level key, written one per line) replaced by `value`, as text. */
function replaceValue(text: string, path: readonly string[], value: string): string {
  const indent = path.length === 1 ? '' : '  ';
  const line = new RegExp(`^${indent}${path.at(-1)}:.*$`, 'm');
  if (line.test(text)) return text.replace(line, `${indent}${path.at(-1)}: ${value}`);
  if (path.length === 1) return `${text}${path[0]}: ${value}\n`;
  return text.replace(new RegExp(`^${path[0]}:\\n`, 'm'), `${path[0]}:\n  ${path[1]}: ${value}\n`);
}

/** A config `base` (a plain object) written as YAML and mutated. */
export function mutateConfig(random: Random, base: Record<string, unknown>): Mutated<Buffer> {
  switch (int(random, 0, 9)) {
    case 0:
    case 1: {
      const mutated = mutateJson(random, base, 2, HOSTILE_VALUES) as Mutated<Record<string, unknown>>;
      const value = mutated.value !== null && typeof mutated.value === 'object' && !Array.isArray(mutated.value) ? mutated.value : { value: mutated.value };
      for (const path of KEPT) if (getPath(base, path) !== undefined && getPath(value, path) !== getPath(base, path)) setPath(value, path, getPath(base, path));
      return { value: Buffer.from(stringify(value)), what: mutated.what };
    }
    case 2: {
      const pattern = pick(random, PATTERNS);
      const targets = random() < 0.5 ? pattern : [pattern, 'q_proj'];
      return { value: Buffer.from(stringify({ ...base, target_modules: targets })), what: `target_modules ${JSON.stringify(targets)}` };
    }
    case 3: {
      const path = pick(random, NUMERIC_KEYS);
      const number = pick(random, HOSTILE_NUMBERS);
      return { value: Buffer.from(replaceValue(stringify(base), path, number)), what: `${path.join('.')}: ${number}` };
    }
    case 4: {
      const depth = int(random, 1000, 100_000);
      const path = pick(random, [['target_modules'], ['data', 'fields'], ['r']] as const);
      const nested = random() < 0.5 ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`;
      return { value: Buffer.from(replaceValue(stringify(base), path, nested)), what: `${path.join('.')}: nested ${depth} deep` };
    }
    case 5: {
      const text = stringify(base);
      const size = 10 * 1024 ** 2;
      const kind = pick(random, ['comment', 'string', 'list']);
      if (kind === 'comment') return { value: Buffer.from(`${text}# ${'x'.repeat(size)}\n`), what: '10 MB of comment' };
      if (kind === 'string') return { value: Buffer.from(replaceValue(text, ['data', 'train'], 'x'.repeat(size))), what: 'data.train: a 10 MB string' };
      return { value: Buffer.from(replaceValue(text, ['target_modules'], `[${'q_proj, '.repeat(size / 8)}q_proj]`)), what: 'target_modules: a list of 10 MB' };
    }
    case 6: {
      // each anchor lists the one before ten times: 10^levels values from a few hundred bytes
      const levels = int(random, 3, 9);
      const names = Array.from({ length: levels }, (_, i) => `l${i}`);
      const anchors = names.map((name, i) => `${name}: &${name} [${i === 0 ? Array(10).fill('"q_proj"').join(', ') : Array(10).fill(`*l${i - 1}`).join(', ')}]`);
      const text = `${stringify(base)}${anchors.join('\n')}\n`;
      return { value: Buffer.from(replaceValue(text, ['target_modules'], `*l${levels - 1}`)), what: `a billion laughs of ${levels} levels at target_modules` };
    }
    case 7: {
      const text = stringify(base);
      const extra = pick(random, [
        ['r: 4', 'a duplicate key r'],
        ['<<: {r: 4, alpha: 8}', 'a merge key'],
        ['model: !!js/function "function () { return 1 }"', 'a !!js/function tag'],
        ['r: !!binary aGVsbG8=', 'a !!binary tag'],
        ['r: !!float 4', 'a !!float tag'],
        ['self: &s [*s]', 'an alias inside its own anchor'],
        ['x: *nowhere', 'an alias without an anchor'],
        ['%YAML 9.9', 'a directive of an unknown YAML version'],
        ['---\nr: 4', 'a second document'],
        ['\t r: 4', 'a tab in the indentation'],
      ]);
      return { value: Buffer.from(`${text}${extra[0]}\n`), what: extra[1]! };
    }
    default: {
      const damaged = damageBytes(random, Buffer.from(stringify(base)));
      return damaged;
    }
  }
}
