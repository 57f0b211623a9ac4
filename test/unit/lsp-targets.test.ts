import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completeConfig } from '../../server/lsp/completion';
import { validateConfig } from '../../server/lsp/diagnostics';
import { hoverConfig } from '../../server/lsp/hover';
import type { FactCache, ModelFacts } from '../../server/lsp/facts';
import type { ModuleSize } from '../../server/models/modules';

// target_modules written as PEFT also takes it: 'all-linear' or a regular expression.
const modules: ModuleSize[] = [];
for (const layer of [0, 1]) {
  modules.push({ name: `model.layers.${layer}.self_attn.q_proj`, dIn: 64, dOut: 64 }, { name: `model.layers.${layer}.mlp.up_proj`, dIn: 64, dOut: 128 });
}
modules.push({ name: 'lm_head', dIn: 64, dOut: 1000 });
const model: ModelFacts = { ok: true, dir: '/m/tiny', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000, shape: { hidden: 64, layers: 2, heads: 4, vocab: 1000 }, tokenizerProblem: null };
const facts = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
const URI = 'file:///w/a.moslora.yaml';
const config = (targets: string) => `model: ./m\ntarget_modules: ${targets}\ndata:\n  train: t.jsonl\n`;
const targetDiagnostics = async (targets: string) =>
  (await validateConfig(URI, config(targets), facts)).diagnostics.filter((d) => String(d.message).startsWith('target_modules')).map((d) => ({ line: d.range.start.line, message: String(d.message) }));

describe('target_modules as a pattern', () => {
  it("takes 'all-linear' and a regular expression that matches whole names", async () => {
    assert.deepEqual(await targetDiagnostics('all-linear'), []);
    assert.deepEqual(await targetDiagnostics("'.*\\.q_proj'"), []);
  });

  it('says when a pattern matches no module, and how a pattern differs from a list', async () => {
    const [problem, ...rest] = await targetDiagnostics('q_proj');
    assert.equal(rest.length, 0);
    assert.equal(problem?.line, 1);
    assert.equal(problem?.message, 'target_modules: "q_proj" matches no linear module of tiny (LlamaForCausalLM); a pattern must match whole module names (e.g. ".*\\.q_proj"); a list matches by suffix');
  });

  it("counts what 'all-linear' selects: every linear module but lm_head", async () => {
    const hover = await hoverConfig(URI, config('all-linear'), { line: 1, character: 2 }, facts);
    const text = JSON.stringify(hover?.contents);
    // LoRA at r 16 on two q_proj (64→64) and two up_proj (64→128): 16·(128 + 192)·2
    assert.match(text, /10,240/, text);
  });

  it("completes the value with 'all-linear'", async () => {
    const items = await completeConfig(URI, 'model: ./m\ntarget_modules: \n', { line: 1, character: 16 }, facts);
    assert.deepEqual(items.map((item) => item.label), ['all-linear']);
  });
});
