// A config is a user's file, and a hostile one must cost the loader no more than a good one: every
// number bounded, the size, nesting and aliases bounded before anything walks the text, each
// refusal one line that says where and why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { loadConfigFile, MAX_CONFIG_BYTES, MAX_ISSUES, parseConfigText, type ConfigIssue } from '../../server/config/load';
import { configSchema } from '../../server/config/schema';

const minimal = 'model: ./tiny-model\ndata:\n  train: train.jsonl\n';

function errorsOf(text: string, file = 'a.moslora.yaml'): ConfigIssue[] {
  return parseConfigText(text, file).issues.filter((issue) => issue.severity === 'error');
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  while (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPrefault) current = current.unwrap() as z.ZodType;
  return current;
}

/** Every key of the schema that takes a number (alone or in a union), as a path. */
function numericKeys(schema: z.ZodType, path: string[] = []): string[][] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, child]) => numericKeys(child, [...path, key]));
  const options = inner instanceof z.ZodUnion ? (inner.options as z.ZodType[]).map(unwrap) : [inner];
  return options.some((option) => option instanceof z.ZodNumber) ? [path] : [];
}

/** `minimal` with `value` written at `path`, and the 0-based line it is on. */
function configWith(path: string[], value: string): { text: string; line: number } {
  const [section, key] = path;
  if (path.length === 1) return { text: `${minimal}${section}: ${value}\n`, line: 3 };
  if (section === 'data') return { text: `model: m\ndata:\n  train: t.jsonl\n  ${key}: ${value}\n`, line: 3 };
  return { text: `${minimal}${section}:\n  ${key}: ${value}\n`, line: 4 };
}

describe('adapter config: every number is bounded', () => {
  const keys = numericKeys(configSchema);

  it('finds the numeric keys of the schema', () => {
    assert.ok(keys.length >= 20, keys.map((k) => k.join('.')).join(', '));
    assert.ok(keys.some((k) => k.join('.') === 'training.batch_size'));
  });

  for (const huge of ['1e20', '4294967296', '.inf']) {
    it(`refuses ${huge} at every numeric key, on its line`, () => {
      for (const path of keys) {
        const { text, line } = configWith(path, huge);
        const errors = errorsOf(text);
        const key = path.join('.');
        assert.equal(errors.length, 1, `${key}: ${errors.map((e) => e.message).join(' | ')}`);
        assert.ok(errors[0]!.message.startsWith(`${key}: `), errors[0]!.message);
        assert.equal(errors[0]!.range.start.line, line, key);
      }
    });
  }

  it('says why a bound is what it is', () => {
    assert.match(errorsOf(`${minimal}training:\n  batch_size: 2147483647\n`)[0]!.message, /^training\.batch_size: needs a value ≤ 4096, got number 2147483647; At most 4,096/);
    const [error] = errorsOf(`${minimal}training:\n  batch_size: 10000000\n`);
    assert.equal(
      error!.message,
      'training.batch_size: needs a value ≤ 4096, got number 10000000; At most 4,096, more than one device holds; a larger effective batch comes from `gradient_accumulation`.',
    );
  });

  it('names .nan and .inf as YAML writes them, not as null', () => {
    assert.equal(errorsOf(`${minimal}training:\n  learning_rate: .nan\n`)[0]!.message, 'training.learning_rate: expected a finite number, got .nan');
    assert.equal(errorsOf(`${minimal}alpha: -.inf\n`)[0]!.message, 'alpha: expected a finite number, got -.inf');
  });

  it('bounds strings and lists: paths, run names, target lists and their entries', () => {
    assert.match(errorsOf(`model: ${'m'.repeat(5000)}\ndata:\n  train: t\n`)[0]!.message, /^model: needs characters ≤ 4096, got a string of 5000 characters, "m{40}"…; At most 4,096 characters, the longest path Linux takes\.$/);
    assert.match(errorsOf(`${minimal}target_modules: [${Array.from({ length: 4097 }, (_, i) => `m${i}`).join(', ')}]\n`)[0]!.message, /^target_modules: needs entries ≤ 4096, got a list of 4097 entries/);
    assert.match(errorsOf(`${minimal}target_modules: [${'q'.repeat(300)}]\n`)[0]!.message, /^target_modules\.0: needs characters ≤ 256/);
  });
});

describe('adapter config: target_modules patterns (RE2)', () => {
  it('accepts a backtracking bomb and answers at once: RE2 matches in linear time', () => {
    const started = process.hrtime.bigint();
    assert.deepEqual(errorsOf(`${minimal}target_modules: '(.*.*)*y'\n`), []);
    assert.ok(process.hrtime.bigint() - started < 5_000_000_000n);
  });

  it('refuses what RE2 lacks with the reason, at the pattern', () => {
    const cases: [string, RegExp][] = [
      ['(q)\\1', /^target_modules: backreferences \(\\1\) are not supported: patterns are matched by RE2, in linear time, which has none$/],
      ['.*(?=q_proj)', /^target_modules: lookahead and lookbehind .* are not supported/],
      ['.*(?<!v)_proj', /^target_modules: lookahead and lookbehind/],
      ['(q|v_proj', /^target_modules: not a valid regular expression: missing closing \): `\(q\|v_proj`$/],
      ['x'.repeat(257), /^target_modules: the pattern is 257 characters, more than 256; list the modules instead, or shorten it/],
      ['.{1000}'.repeat(6), /^target_modules: the pattern compiles to 6,002 RE2 instructions, more than 5,000/],
    ];
    for (const [pattern, expected] of cases) {
      const errors = errorsOf(`${minimal}target_modules: '${pattern}'\n`);
      assert.equal(errors.length, 1, pattern);
      assert.match(errors[0]!.message, expected);
      assert.equal(errors[0]!.range.start.line, 3);
    }
  });
});

describe('adapter config: size, nesting and aliases', () => {
  it('refuses a config over the size limit without parsing it', () => {
    const text = `${minimal}${'#'.repeat(MAX_CONFIG_BYTES)}\n`;
    const errors = errorsOf(text);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /^the config is 64(\.\d)? KiB, more than the 64 KiB a config may be .*; it is not checked$/);
  });

  it('refuses deep nesting where it starts, before the parser runs out of stack', () => {
    for (const [text, file] of [
      [`${minimal}r: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`, 'a.moslora.yaml'],
      [`{"model": "m", "r": ${'{"a": '.repeat(5000)}1${'}'.repeat(5000)}}`, 'a.moslora.json'],
    ] as const) {
      const errors = errorsOf(text, file);
      assert.equal(errors.length, 1, errors.map((e) => e.message).join(' | '));
      assert.match(errors[0]!.message, /^nested more than 64 levels deep \(a config nests three levels, as in data\.fields\.prompt\); it is not checked$/);
      assert.equal(errors[0]!.range.start.line, file.endsWith('.json') ? 0 : 3);
    }
    const indented = `${minimal}r:\n${Array.from({ length: 200 }, (_, i) => `${' '.repeat(i + 1)}a${i}:`).join('\n')} 1\n`;
    assert.match(errorsOf(indented)[0]!.message, /^indented more than 128 columns/);
  });

  it('refuses a billion laughs at its first alias, and an alias without its anchor', () => {
    const laughs = [minimal.trimEnd(), 'a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((name, i) => `${name}: &${name} [${Array(10).fill(`*${'abcdefghi'[i]}`).join(', ')}]`), ''].join('\n');
    const errors = errorsOf(laughs);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /^YAML aliases: expanding them takes more than 100 copies/);
    assert.equal(errors[0]!.range.start.line, 4);
    assert.match(errorsOf(`${minimal}r: *nowhere\n`)[0]!.message, /^YAML (alias|syntax)/);
  });

  it('reports the first issues and how many more, not thousands', () => {
    const text = `${minimal}${Array.from({ length: 1000 }, (_, i) => `unknown_${i}: 1`).join('\n')}\n`;
    const errors = errorsOf(text);
    assert.equal(errors.length, MAX_ISSUES + 1);
    assert.match(errors.at(-1)!.message, /^900 more problems in this config, the first: unknown key "unknown_100"/);
  });

  it('reads a config file only if it is a regular file within the limit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moslora-hostile-config-'));
    try {
      const fifo = join(dir, 'fifo.moslora.yaml');
      execFileSync('mkfifo', [fifo]);
      await assert.rejects(loadConfigFile(fifo), { message: `${fifo}: is a FIFO (named pipe), not a regular file; a config must be a file` });
      await assert.rejects(loadConfigFile('/dev/zero'), { message: '/dev/zero: is a character device, not a regular file; a config must be a file' });
      const large = join(dir, 'large.moslora.yaml');
      await writeFile(large, `${minimal}${'#'.repeat(2 * MAX_CONFIG_BYTES)}\n`);
      await assert.rejects(loadConfigFile(large), /large\.moslora\.yaml: is 128(\.\d)? KiB, more than the 64 KiB a config may hold; a config is a few hundred bytes$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
