// Reading an adapter config (server/config/load.ts, by the schema's rules): the defaults, each bad
// value refused at its own line, did-you-mean help and warnings, and paths resolved from the config
// file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfigFile, parseConfigText, type ConfigIssue } from '../../server/config/load';

const minimal = 'model: ./tiny-model\ndata:\n  train: train.jsonl\n';

function issuesOf(text: string, file = 'a.moslora.yaml'): ConfigIssue[] {
  return parseConfigText(text, file).issues;
}

function onlyError(text: string): ConfigIssue {
  const errors = issuesOf(text).filter((i) => i.severity === 'error');
  assert.equal(errors.length, 1, `one error expected, got: ${errors.map((e) => e.message).join(' | ')}`);
  return errors[0]!;
}

describe('adapter config: defaults', () => {
  it('fills the reference MoSLoRA commonsense setup around a minimal config', () => {
    const { config, issues } = parseConfigText(minimal, 'a.moslora.yaml');
    assert.deepEqual(issues, []);
    assert.ok(config);
    assert.equal(config.method, 'moslora');
    assert.equal(config.r, 16);
    assert.equal(config.alpha, 32);
    assert.equal(config.dropout, 0.05);
    assert.equal(config.mixer_init, 'kaiming');
    assert.deepEqual(config.target_modules, ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj']);
    assert.equal(config.training.learning_rate, 3e-4);
    assert.equal(config.training.warmup_steps, 100);
    assert.equal(config.training.batch_size * config.training.gradient_accumulation, 16);
    assert.equal(config.data.format, 'completion');
    assert.equal(config.data.train_on_prompt, false);
    assert.equal(config.output.runs_dir, 'runs');
    assert.equal(config.backend, 'auto');
  });

  it("takes target_modules as PEFT does: a list, 'all-linear', or a regular expression", () => {
    for (const written of ['[q_proj, v_proj]', 'all-linear', "'.*\\.(q|v)_proj'"]) {
      const { config, issues } = parseConfigText(`${minimal}target_modules: ${written}\n`, 'file:///c.moslora.yaml');
      assert.deepEqual(issues, [], written);
      assert.deepEqual(config?.target_modules, written === '[q_proj, v_proj]' ? ['q_proj', 'v_proj'] : written === 'all-linear' ? 'all-linear' : '.*\\.(q|v)_proj');
    }
  });

  it('reads JSON configs with the same schema', () => {
    const { config } = parseConfigText('{"model": "m", "method": "lora", "data": {"train": "t.jsonl", "format": "chat"}}', 'a.moslora.json');
    assert.equal(config?.method, 'lora');
    assert.equal(config?.data.format, 'chat');
  });
});

describe('adapter config: every field rejects a bad value at its own line', () => {
  // [yaml line to add, the key path named in the message, a fragment of the message]
  const cases: [string, string, string][] = [
    ['method: dora', 'method', 'allowed: lora, moslora, moslora-fixed, linchain'],
    ['r: 0', 'r', '> 0'],
    ['r: 2.5', 'r', 'expected int'],
    ['alpha: -1', 'alpha', '> 0'],
    ['dropout: 1', 'dropout', '< 1'],
    ['mixer_init: random', 'mixer_init', 'allowed: kaiming, orthogonal, identity, zeros'],
    ['chain_length: 1', 'chain_length', '≥ 2'],
    ['use_rslora: yes please', 'use_rslora', 'expected boolean'],
    ['target_modules: []', 'target_modules', 'entries ≥ 1'],
    ['target_modules: 42', 'target_modules', 'expected array or string, got number 42'],
    ['target_modules: "(q|v_proj"', 'target_modules', 'not a valid regular expression: missing closing ): `(q|v_proj`'],
    ['backend: cuda', 'backend', 'allowed: auto, tensorflow, webgpu, wasm, cpu'],
    ['output:\n  run_name: my run', 'output.run_name', 'letters, digits'],
    ['output:\n  runs_dir: ""', 'output.runs_dir', 'characters ≥ 1'],
  ];
  for (const [line, key, fragment] of cases) {
    it(`${key}: ${line.replace(/\n\s*/g, ' ')}`, () => {
      const text = `${minimal}${line}\n`;
      const error = onlyError(text);
      assert.ok(error.message.startsWith(`${key}:`), error.message);
      assert.ok(error.message.includes(fragment), `"${error.message}" should mention "${fragment}"`);
      const lastLine = text.trimEnd().split('\n').length - 1;
      assert.equal(error.range.start.line, lastLine, 'points at the offending value');
    });
  }

  const sections: [string, string, string][] = [
    ['data', 'format: csv', 'allowed: text, alpaca, chat, completion'],
    ['data', 'eval_split: 0.9', '≤ 0.5'],
    ['data', 'max_length: 0', '> 0'],
    ['data', 'packing: 1', 'expected boolean'],
    ['data', 'train_on_prompt: "no"', 'expected boolean'],
    ['training', 'epochs: 0', '> 0'],
    ['training', 'max_steps: -5', '> 0'],
    ['training', 'batch_size: four', 'expected number'],
    ['training', 'gradient_accumulation: 0', '> 0'],
    ['training', 'learning_rate: 3', '≤ 1'],
    ['training', 'schedule: exponential', 'allowed: linear, cosine, constant'],
    ['training', 'warmup_steps: -1', '≥ 0'],
    ['training', 'weight_decay: -0.1', '≥ 0'],
    ['training', 'grad_clip: 0', '> 0'],
    ['training', 'seed: 1.5', 'expected int'],
    ['training', 'log_interval: 0', '> 0'],
    ['training', 'eval_interval: 0', '> 0'],
    ['training', 'checkpoint_interval: 0', '> 0'],
    ['training', 'checkpoints_kept: 0', '> 0'],
    ['training', 'mixer_interval: 0', '> 0'],
    ['training', 'gradient_checkpointing: maybe', 'expected boolean or "auto", got string "maybe"'],
    ['training', 'workers: many', 'expected number or "auto", got string "many"'],
  ];
  for (const [section, line, fragment] of sections) {
    it(`${section}.${line}`, () => {
      const text = section === 'data' ? `model: m\ndata:\n  train: t.jsonl\n  ${line}\n` : `${minimal}${section}:\n  ${line}\n`;
      const error = onlyError(text);
      assert.ok(error.message.startsWith(`${section}.${line.split(':')[0]}:`), error.message);
      assert.ok(error.message.includes(fragment), `"${error.message}" should mention "${fragment}"`);
      assert.equal(error.range.start.line, text.trimEnd().split('\n').length - 1);
    });
  }
});

describe('adapter config: help for mistakes', () => {
  it('a misspelt key gets "did you mean" and the replacement for a quick fix, at the key itself', () => {
    const error = onlyError(`${minimal}training:\n  lerning_rate: 1e-4\n`);
    assert.match(error.message, /unknown key "lerning_rate" in training; did you mean "learning_rate"\?/);
    assert.equal(error.replacement, 'learning_rate');
    assert.deepEqual(error.range, { start: { line: 4, character: 2 }, end: { line: 4, character: 14 } });
  });

  it('a key at the wrong level is pointed to its section', () => {
    assert.match(onlyError(`${minimal}warmup_steps: 10\n`).message, /did you mean "warmup_steps" under training:\?/);
  });

  it('a misspelt value gets the closest allowed one', () => {
    const error = onlyError(`${minimal}method: mosslora\n`);
    assert.match(error.message, /did you mean "moslora"\?/);
    assert.equal(error.replacement, 'moslora');
  });

  it('missing required keys are named with what they are for', () => {
    assert.match(onlyError('data:\n  train: t.jsonl\n').message, /missing required key "model": A Hugging Face model folder/);
    assert.match(onlyError('model: m\ndata:\n  format: text\n').message, /missing required key "train" in data/);
  });

  it('syntax errors carry their position; a non-mapping is refused', () => {
    const yaml = issuesOf('model: m\ndata: [unclosed\n');
    assert.match(yaml[0]!.message, /^YAML syntax:/);
    const json = issuesOf('{"model": "m", "data": {"train": "t",}}', 'a.moslora.json');
    assert.match(json[0]!.message, /^JSON syntax:/);
    assert.match(issuesOf('- just\n- a list\n')[0]!.message, /must be a mapping of keys .* got a list/);
  });

  it('warns about the legal but surprising, without refusing the config', () => {
    const { config, issues } = parseConfigText(
      `${minimal}alpha: 256\nmethod: lora\nmixer_init: orthogonal\nchain_length: 3\ntraining:\n  epochs: 2\n  max_steps: 50\n  warmup_steps: 60\n`,
      'a.moslora.yaml',
    );
    assert.ok(config);
    assert.ok(issues.every((i) => i.severity === 'warning'));
    const messages = issues.map((i) => i.message).join('\n');
    assert.match(messages, /alpha \/ r = 256 \/ 16 = 16.0 is far from the usual/);
    assert.match(messages, /mixer_init is ignored: LoRA has no mixer/);
    assert.match(messages, /chain_length is ignored unless method is linchain/);
    assert.match(messages, /epochs is ignored because max_steps is set/);
    assert.match(messages, /warmup_steps \(60\) ≥ max_steps \(50\)/);
  });
});

describe('adapter config: files', () => {
  it('resolves paths relative to the config file and reports errors as file:line:col', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'moslora-config-'));
    try {
      const good = join(dir, 'good.moslora.yaml');
      await writeFile(good, `${minimal}data:\n  train: data/train.jsonl\n  eval: ../eval.jsonl\n`.replace(minimal, 'model: ./tiny-model\n'));
      const config = await loadConfigFile(good);
      assert.equal(config.model, join(dir, 'tiny-model'));
      assert.equal(config.data.train, join(dir, 'data/train.jsonl'));
      assert.equal(config.data.eval, join(dir, '..', 'eval.jsonl'));
      assert.equal(config.output.runs_dir, join(dir, 'runs'));
      const bad = join(dir, 'bad.moslora.yaml');
      await writeFile(bad, `${minimal}r: -3\n`);
      await assert.rejects(loadConfigFile(bad), (error: unknown) => error instanceof ConfigError && error.message === `${bad}:4:4: error: r: needs a value > 0, got number -3`);
      await assert.rejects(loadConfigFile(join(dir, 'missing.moslora.yaml')), /missing\.moslora\.yaml: cannot read a config: no such file \(ENOENT\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
