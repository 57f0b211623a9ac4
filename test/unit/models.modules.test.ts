// A checkpoint's linear modules read from its header (server/models/modules.ts): Llama and GPT-2
// layouts, a missing tensor or a shape that disagrees with config.json, and target_modules matched
// as PEFT matches them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseModelConfig } from '../../server/models/config';
import { CheckpointLayoutError, expectedTensors, matchTargetModules, modelLayout, type TensorTable } from '../../server/models/modules';
import { TINY_GPT2_CONFIG, TINY_LLAMA_CONFIG } from '../helpers/tiny-models';

const LLAMA = parseModelConfig(TINY_LLAMA_CONFIG, 'config.json');
const GPT2 = parseModelConfig(TINY_GPT2_CONFIG, 'config.json');

function tableOf(tensors: { name: string; shape: number[] }[], rename: (name: string) => string = (n) => n): TensorTable {
  return new Map(tensors.map(({ name, shape }) => [rename(name), { dtype: 'BF16', shape }]));
}

describe('linear modules from the checkpoint header', () => {
  it('lists a Llama model\'s linear modules in forward order with [d_out, d_in], lm_head last', () => {
    const { linears } = modelLayout(LLAMA, tableOf(expectedTensors(LLAMA)), 'dir');
    assert.equal(linears.length, 2 * 7 + 1);
    assert.deepEqual(
      linears.slice(0, 7).map((m) => [m.name, m.dOut, m.dIn]),
      [
        ['model.layers.0.self_attn.q_proj', 32, 32],
        ['model.layers.0.self_attn.k_proj', 16, 32], // 2 key/value heads × 8
        ['model.layers.0.self_attn.v_proj', 16, 32],
        ['model.layers.0.self_attn.o_proj', 32, 32],
        ['model.layers.0.mlp.gate_proj', 40, 32],
        ['model.layers.0.mlp.up_proj', 40, 32],
        ['model.layers.0.mlp.down_proj', 32, 40],
      ],
    );
    assert.deepEqual(linears.at(-1), { name: 'lm_head', weight: 'lm_head.weight', bias: null, layout: 'out_in', dOut: 48, dIn: 32 });
  });

  it('lists GPT-2 Conv1D modules as in_out, with the fused c_attn 3·n_embd wide, and ties lm_head to wte', () => {
    const { linears, parameters } = modelLayout(GPT2, tableOf(expectedTensors(GPT2)), 'dir');
    assert.deepEqual(linears[0], {
      name: 'transformer.h.0.attn.c_attn',
      weight: 'transformer.h.0.attn.c_attn.weight',
      bias: 'transformer.h.0.attn.c_attn.bias',
      layout: 'in_out',
      dOut: 96,
      dIn: 32,
    });
    assert.equal(linears.at(-1)!.weight, 'transformer.wte.weight');
    assert.ok(!parameters.some((p) => p.tensor.startsWith('lm_head')), 'a tied lm_head reads no tensor of its own');
  });

  it('reads GPT-2 checkpoints stored without the "transformer." prefix, keeping the module names', () => {
    const { linears } = modelLayout(GPT2, tableOf(expectedTensors(GPT2), (n) => n.replace(/^transformer\./, '')), 'dir');
    assert.equal(linears[0]!.name, 'transformer.h.0.attn.c_attn');
    assert.equal(linears[0]!.weight, 'h.0.attn.c_attn.weight');
  });

  it('names a missing tensor with its nearest names, and a shape that disagrees with config.json', () => {
    const tensors = expectedTensors(LLAMA).filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight');
    assert.throws(() => modelLayout(LLAMA, tableOf(tensors), 'dir'), (error: Error) => {
      assert.ok(error instanceof CheckpointLayoutError);
      assert.match(error.message, /^dir: no tensor "model\.layers\.1\.mlp\.up_proj\.weight"; nearest names: "model\.layers\.0\.mlp\.up_proj\.weight"/);
      return true;
    });
    const wrong = expectedTensors(LLAMA).map((t) => (t.name === 'model.layers.0.self_attn.k_proj.weight' ? { ...t, shape: [32, 32] } : t));
    assert.throws(
      () => modelLayout(LLAMA, tableOf(wrong), 'dir'),
      /dir: tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[32, 32\] but config\.json .* implies \[16, 32\]/,
    );
  });
});

describe('target_modules', () => {
  const names = modelLayout(LLAMA, tableOf(expectedTensors(LLAMA)), 'dir').linears.map((m) => m.name);

  it('matches a list entry by equality or by a "." + entry suffix, as PEFT', () => {
    const { modules, unmatched } = matchTargetModules(names, ['q_proj', 'self_attn.v_proj', 'model.layers.1.mlp.down_proj', 'proj', 'lm_head']);
    assert.deepEqual(modules, [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.1.mlp.down_proj',
      'lm_head',
    ]);
    assert.deepEqual(unmatched, ['proj'], '"proj" is not a suffix at a "." boundary');
  });

  it('reports every entry that matches nothing', () => {
    assert.deepEqual(matchTargetModules(names, ['q_proj', 'c_attn', 'qproj']).unmatched, ['c_attn', 'qproj']);
  });

  it('treats a string as a full-match regular expression, and "all-linear" as all but lm_head', () => {
    assert.deepEqual(matchTargetModules(names, String.raw`.*\.1\.self_attn\.(q|k)_proj`).modules, [
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.k_proj',
    ]);
    assert.deepEqual(matchTargetModules(names, 'q_proj'), { modules: [], unmatched: ['q_proj'] });
    const all = matchTargetModules(names, 'all-linear').modules;
    assert.equal(all.length, names.length - 1);
    assert.ok(!all.includes('lm_head'));
  });

  it('matches a pattern in linear time: a backtracking bomb selects nothing, at once, on long names', { timeout: 30_000 }, () => {
    const long = Array.from({ length: 200 }, (_, i) => `${'x'.repeat(40 + (i % 20))}.layers.${i}.self_attn.q_proj`);
    const started = process.hrtime.bigint();
    assert.deepEqual(matchTargetModules(long, '(.*.*)*y'), { modules: [], unmatched: ['(.*.*)*y'] });
    assert.deepEqual(matchTargetModules(long, '(x+x+)+y'), { modules: [], unmatched: ['(x+x+)+y'] });
    // a backtracking engine takes hours on these; RE2 some milliseconds (the bound only catches a hang)
    assert.ok(process.hrtime.bigint() - started < 10_000_000_000n);
  });

  it('refuses, naming the key, a pattern RE2 does not take', () => {
    assert.throws(() => matchTargetModules(names, String.raw`(q)\1_proj`), {
      message: String.raw`target_modules: "(q)\\1_proj": backreferences (\1) are not supported: patterns are matched by RE2, in linear time, which has none`,
    });
  });
});
