// Seeded mutations of what reaches the language server and not the CLI's fuzzing (mutate.ts):
// adapter configs as a user's file may hold them (catastrophic regular expressions, huge numbers,
// deep nesting, aliases, 10 MB files), a model's config.json with claims its headers do not back,
// datasets, and the params of the editor's custom requests with paths that lead out of the
// workspace. Each mutation says what it did, so that a failing case names its input.
import { stringify } from 'yaml';
import { damageBytes, deepJson, int, mutateJson, pick, type Mutated, type Random } from './mutate';

/** Patterns that backtrack catastrophically in a backtracking engine, and ones past any length limit. */
export const HOSTILE_PATTERNS: readonly string[] = [
  '(.*.*)*y',
  '(a+)+$',
  '^(q|q?)*proj$',
  '(x+x+)+y',
  '((a|a)*)*b',
  '.*'.repeat(200),
  `(${'q_proj|'.repeat(400)}x)`,
  'a'.repeat(5000),
  '[',
  '(?<=q)_proj',
  '\\1(a)',
  '(?i)Q_PROJ',
];

/** Numbers past every bound a schema should hold, as a YAML scalar's text. */
const HUGE_NUMBERS: readonly string[] = ['10000000', '2147483647', '1e20', '1e308', '-1e308', '.nan', '.inf', '-.inf', '0x7fffffffffffffff', '9'.repeat(400), '-0', '1e-320'];

/** The keys a config's numbers live under, by path. */
const NUMBER_KEYS: readonly (readonly string[])[] = [
  ['r'],
  ['alpha'],
  ['dropout'],
  ['chain_length'],
  ['data', 'max_length'],
  ['data', 'eval_split'],
  ['training', 'batch_size'],
  ['training', 'gradient_accumulation'],
  ['training', 'epochs'],
  ['training', 'max_steps'],
  ['training', 'learning_rate'],
  ['training', 'weight_decay'],
  ['training', 'warmup_steps'],
  ['training', 'workers'],
  ['training', 'log_interval'],
];

function setAt(config: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = config;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null || Array.isArray(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
}

/** `base` as YAML with the scalar at `path` written as `text`. */
function withScalar(base: Record<string, unknown>, path: readonly string[], text: string): string {
  const copy = structuredClone(base);
  setAt(copy, path, '__SCALAR__');
  return stringify(copy).replace('__SCALAR__', text);
}

/**
 * An adapter config's text, from `base` (the parsed config of a valid one): a value replaced or
 * deleted, a regular expression or a huge number where the schema bounds one, nesting past any
 * parser's stack, aliases that expand exponentially, bytes damaged, a runs folder among
 * `runsDirs` (outside the workspace), or a 10 MB file (one case in `hugeEvery`).
 */
export function mutateConfig(random: Random, base: Record<string, unknown>, runsDirs: readonly string[], hugeEvery = 40): Mutated<string> {
  const plain = stringify(base);
  if (int(random, 1, hugeEvery) === 1) {
    const kind = int(random, 0, 2);
    const size = 10 * 1024 ** 2;
    if (kind === 0) return { value: `${plain}# ${'x'.repeat(size)}\n`, what: 'a 10 MB comment' };
    if (kind === 1) return { value: `${plain}notes: "${'n'.repeat(size)}"\n`, what: 'a 10 MB string' };
    return { value: `${plain}${Array.from({ length: size / 16 }, (_, i) => `k${i}: 1`).join('\n')}\n`, what: 'a 10 MB map' };
  }
  switch (int(random, 0, 8)) {
    case 7: {
      const runsDir = pick(random, runsDirs);
      return { value: stringify({ ...base, output: { runs_dir: runsDir } }), what: `output.runs_dir ${runsDir.slice(0, 60)}` };
    }
    case 0: {
      const pattern = pick(random, HOSTILE_PATTERNS);
      const value = random() < 0.5 ? pattern : [pattern, 'q_proj'];
      return { value: stringify({ ...base, target_modules: value }), what: `target_modules ${JSON.stringify(value).slice(0, 60)}` };
    }
    case 1: {
      const path = pick(random, NUMBER_KEYS);
      const number = pick(random, HUGE_NUMBERS);
      return { value: withScalar(base, path, number), what: `${path.join('.')}: ${number.slice(0, 20)}` };
    }
    case 2: {
      const depth = pick(random, [64, 1000, 10_000, 100_000]);
      const key = pick(random, ['target_modules', 'data', 'training', 'notes']);
      return { value: `${plain}${key}: ${deepJson(depth)}\n`, what: `${key}: nested ${depth} deep` };
    }
    case 3: {
      const depth = pick(random, [100, 1000]);
      const lines = Array.from({ length: depth }, (_, i) => `${' '.repeat(i + 2)}k:`);
      return { value: `${plain}notes:\n${lines.join('\n')}\n${' '.repeat(depth + 2)}v: 1\n`, what: `a block map nested ${depth} deep` };
    }
    case 4: {
      const levels = int(random, 3, 12);
      const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
      return { value: `${plain}${lines.join('\n')}\ntarget_modules: *a${levels - 1}\n`, what: `aliases ${levels} levels deep (billion laughs)` };
    }
    case 5: {
      const damaged = damageBytes(random, Buffer.from(plain));
      return { value: damaged.value.toString('latin1'), what: damaged.what };
    }
    default: {
      const mutated = mutateJson(random, base, 3);
      return { value: stringify(mutated.value), what: mutated.what };
    }
  }
}

/** Claims a config.json may make that its safetensors headers do not back. */
const MODEL_CLAIMS: readonly [string, unknown][] = [
  ['num_hidden_layers', 10_000_000],
  ['num_hidden_layers', 1e9],
  ['num_hidden_layers', 0],
  ['hidden_size', 2 ** 31],
  ['hidden_size', 7],
  ['intermediate_size', 1e12],
  ['vocab_size', 1e15],
  ['num_attention_heads', 0],
  ['num_key_value_heads', 3],
  ['head_dim', -1],
  ['architectures', ['GPT2LMHeadModel']],
  ['architectures', 'LlamaForCausalLM'],
  ['architectures', Array(100_000).fill('LlamaForCausalLM')],
  ['tie_word_embeddings', 'yes'],
  ['torch_dtype', 'int8'],
];

/** A model's config.json: a claim its headers do not back, a value replaced, nesting, or bytes damaged. */
export function mutateModelConfig(random: Random, base: Record<string, unknown>): Mutated<Buffer> {
  switch (int(random, 0, 3)) {
    case 0: {
      const [key, value] = pick(random, MODEL_CLAIMS);
      return { value: Buffer.from(JSON.stringify({ ...base, [key]: value })), what: `${key}: ${JSON.stringify(value).slice(0, 40)}` };
    }
    case 1: {
      const depth = pick(random, [1000, 100_000]);
      return { value: Buffer.from(JSON.stringify({ ...base, rope_scaling: 0 }).replace('"rope_scaling":0', `"rope_scaling":${deepJson(depth)}`)), what: `rope_scaling nested ${depth} deep` };
    }
    case 2: {
      const damaged = damageBytes(random, Buffer.from(JSON.stringify(base, null, 2)));
      return damaged;
    }
    default: {
      const mutated = mutateJson(random, base, 2);
      return { value: Buffer.from(JSON.stringify(mutated.value) ?? 'null'), what: mutated.what };
    }
  }
}

/** A tokenizer.json: a value deep inside replaced or deleted, or bytes damaged. */
export function mutateTokenizer(random: Random, text: string): Mutated<Buffer> {
  if (random() < 0.3) return damageBytes(random, Buffer.from(text));
  const mutated = mutateJson(random, JSON.parse(text), 4);
  return { value: Buffer.from(JSON.stringify(mutated.value) ?? 'null'), what: mutated.what };
}

/** A JSON Lines dataset: a record replaced, a line of `longLine` characters, empty or blank records, bytes damaged. */
export function mutateDataset(random: Random, lines: readonly string[], longLine = 2 * 1024 ** 2): Mutated<Buffer> {
  const at = int(random, 0, lines.length - 1);
  const replace = (line: string, what: string) => ({ value: Buffer.from([...lines.slice(0, at), line, ...lines.slice(at + 1)].join('\n')), what: `line ${at + 1}: ${what}` });
  switch (int(random, 0, 5)) {
    case 0:
      return replace(`{"prompt": "${'p'.repeat(longLine)}", "completion": "c"}`, `a ${longLine}-character record`);
    case 1:
      return replace(pick(random, ['', '   ', '{}', '[]', 'null', '"text"', '{"prompt": null}', deepJson(100_000)]), 'an empty, blank or foreign record');
    case 2:
      return damageBytes(random, Buffer.from(lines.join('\n')));
    default: {
      const mutated = mutateJson(random, JSON.parse(lines[at]!), 2);
      return replace(JSON.stringify(mutated.value) ?? 'null', mutated.what);
    }
  }
}

/** Where a hostile request's path may point, given the workspace and a folder outside it. */
export function hostilePaths(workspace: string, outside: string): string[] {
  return [
    outside,
    `${outside}/passwd`,
    `${outside}/run`,
    `${outside}/runs/new`,
    `${workspace}/../outside/run`,
    `${workspace}/escape/run`,
    `${workspace}/escape/passwd`,
    `${workspace}-sibling/run`,
    '/etc/passwd',
    '/',
    '/proc/self/environ',
    '/dev/zero',
    'runs',
    '../outside',
    '~/runs',
    '-rf',
    '--force',
    '--out=/tmp/x',
    '-',
    '',
    `${workspace}/a\u0000/b`,
    `/${'a'.repeat(5000)}`,
    'C:\\Windows\\System32',
    '\\\\server\\share\\runs',
  ];
}

/** A config URI that leads out of the workspace, or is no file URI at all. */
export function hostileUris(workspace: string, outside: string): string[] {
  return [
    `file://${outside}/passwd`,
    'file:///etc/passwd',
    `file://${workspace}/..%2foutside/passwd`,
    `file://${workspace}/%2e%2e/outside/passwd`,
    `file://${workspace}/escape/passwd`,
    'file://remote-host/etc/passwd',
    'untitled:Untitled-1',
    'http://example.invalid/a.moslora.yaml',
    'file:',
    '',
    '-rf',
    `${outside}/passwd`,
    `file://${workspace}/${'x'.repeat(20_000)}`,
  ];
}

/** Param shapes beyond paths: wrong types, extra keys, positions, prototypes, a 1 MB string. */
export const HOSTILE_PARAMS: readonly unknown[] = [null, 0, 'x', [], [null], true, { __proto__: { runDir: '/' } }, JSON.parse('{"__proto__": {"x": 1}}'), 'p'.repeat(1024 ** 2)];
