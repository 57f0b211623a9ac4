// use_dora in the editor: the hover on r, the memory estimate and the Estimate report count DoRA's
// magnitude vectors (d_out per adapted module) with what the method trains.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { describeEstimate } from '../../extension/estimate';
import { FactCache } from '../../server/lsp/facts';
import { hoverConfig, parameterCounts, trainableCount } from '../../server/lsp/hover';
import type { ModelFacts } from '../../server/lsp/facts';
import type { ModuleSize } from '../../server/models/modules';
import { estimateConfig } from '../../server/tasks/estimate';

const ROOT = resolve(import.meta.dirname, '..', '..');
const modules: ModuleSize[] = [
  { name: 'model.layers.0.self_attn.q_proj', dIn: 64, dOut: 64 },
  { name: 'model.layers.0.mlp.up_proj', dIn: 64, dOut: 128 },
];
const model: ModelFacts = { ok: true, dir: '/m/tiny', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000, shape: { hidden: 64, layers: 1, heads: 4, vocab: 1000 }, tokenizerProblem: null };
const stub = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
const text = (dora: string) => `model: ./m\nr: 4\nmethod: moslora\n${dora}target_modules: [q_proj, up_proj]\ndata:\n  train: t.jsonl\n`;

describe('DoRA in the editor', () => {
  it('trainableCount adds d_out per module where use_dora is on', () => {
    const counts = parameterCounts(modules, 4, 2);
    assert.equal(counts.magnitudes, 64 + 128);
    assert.equal(trainableCount(counts, 'lora', true), 4 * (128 + 192) + 192);
    assert.equal(trainableCount(counts, 'moslora', true), 4 * (128 + 192) + 2 * 16 + 192);
    assert.equal(trainableCount(counts, 'moslora'), 4 * (128 + 192) + 2 * 16);
  });

  it('the hover on r counts each method with DoRA when the config sets use_dora', async () => {
    const hover = await hoverConfig('file:///w/a.moslora.yaml', text('use_dora: true\n'), { line: 1, character: 0 }, stub);
    const value = (hover?.contents as { value: string }).value;
    const lora = 4 * (128 + 192);
    assert.ok(value.includes(`| LoRA + DoRA | ${(lora + 192).toLocaleString('en-US')} |`), value);
    assert.ok(value.includes(`| MoSLoRA + DoRA (this config) | ${(lora + 32 + 192).toLocaleString('en-US')} |`), value);
    assert.match(value, /DoRA \(use_dora\) adds d_out per module for its magnitude: 192\./);
    const plain = await hoverConfig('file:///w/a.moslora.yaml', text(''), { line: 1, character: 0 }, stub);
    assert.ok(!(plain?.contents as { value: string }).value.includes('DoRA'));
  });

  it('Estimate counts the magnitudes in what the config trains, and says so', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'moslora-dora-estimate-'));
    after(() => rmSync(temp, { recursive: true, force: true }));
    const facts = new FactCache(() => {});
    after(() => facts.dispose());
    const file = join(temp, 'dora.moslora.yaml');
    const train = join(ROOT, 'examples', 'tiny-task', 'train.jsonl');
    writeFileSync(file, `model: ${join(ROOT, 'examples', 'tiny-model')}\nmethod: lora\nr: 4\nuse_dora: true\ntarget_modules: [q_proj]\ndata:\n  train: ${train}\n`);
    const e = await estimateConfig(file, facts);
    // q_proj 128 → 128 in each of the 4 layers
    assert.equal(e.magnitudes, 4 * 128);
    assert.equal(e.trainable, e.lora + 4 * 128);
    assert.match(describeEstimate(e), /This config trains 4,608, DoRA's magnitudes \(d_out per module\) included: 512\./);
  });
});
