// The New Adapter Config template (extension/template.ts): its paths to the shipped example, and
// the config it writes, checked with the server's own loader.
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { configTemplate, examplePaths, PLACEHOLDER_PATHS } from '../../extension/template';
import { parseConfigText } from '../../server/config/load';

const ROOT = resolve(import.meta.dirname, '..', '..');

describe('the New Adapter Config template', () => {
  it('points at the shipped example relative to the config, from the root or a subfolder', () => {
    assert.deepEqual(examplePaths('/repo', '/repo/examples'), {
      model: './examples/tiny-model',
      train: './examples/tiny-task/train.jsonl',
      eval: './examples/tiny-task/eval.jsonl',
    });
    assert.equal(examplePaths('/repo/configs', '/repo/examples').model, '../examples/tiny-model');
  });

  it("is a valid config by the server's own loader, with the example and with placeholders", () => {
    for (const text of [configTemplate(examplePaths(ROOT, join(ROOT, 'examples')), true), configTemplate(PLACEHOLDER_PATHS, false)]) {
      const { config, issues } = parseConfigText(text, join(ROOT, 'new.moslora.yaml'));
      assert.deepEqual(issues, []);
      assert.equal(config?.method, 'moslora');
      assert.equal(config?.training.max_steps, 60);
    }
  });
});
