// What New Adapter Config finds in a workspace (extension/scan.ts): model folders and datasets with
// their format, the training file and its eval file; the config written from them has no problems
// by the server's own loader.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { evalFor, kindOf, namedForTraining, scanWorkspace, targetModulesFor, trainCandidates } from '../../extension/scan';
import { configTemplate } from '../../extension/template';
import { parseConfigText } from '../../server/config/load';

const ROOT = resolve(import.meta.dirname, '..', '..');

describe('New Adapter Config in a workspace without examples/', () => {
  const root = mkdtempSync(join(tmpdir(), 'moslora-scan-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('finds the model folder and the data of a copy of examples/, and picks the eval file of the same format', async () => {
    cpSync(join(ROOT, 'examples', 'tiny-model'), join(root, 'tiny-model'), { recursive: true });
    cpSync(join(ROOT, 'examples', 'tiny-task'), join(root, 'tiny-task'), { recursive: true });
    mkdirSync(join(root, 'node_modules', 'x'), { recursive: true });
    writeFileSync(join(root, 'node_modules', 'x', 'train.jsonl'), '{"text": "not ours"}\n');
    const found = await scanWorkspace(root);
    assert.deepEqual(found.models, [{ dir: join(root, 'tiny-model'), architecture: 'LlamaForCausalLM' }]);
    assert.deepEqual(
      found.datasets.map((d) => [d.file.slice(root.length + 1), d.kind]),
      [
        ['tiny-task/eval-mc.jsonl', 'choices'],
        ['tiny-task/eval.jsonl', 'completion'],
        ['tiny-task/train.jsonl', 'completion'],
      ],
    );
    const train = trainCandidates(found.datasets);
    assert.deepEqual(train.map((d) => d.file.slice(root.length + 1)), ['tiny-task/train.jsonl', 'tiny-task/eval.jsonl'], 'training data first; multiple choice cannot train');
    assert.deepEqual(train.filter(namedForTraining).length, 1);
    assert.equal(evalFor(train[0]!, found.datasets)?.file, join(root, 'tiny-task', 'eval.jsonl'), 'the same format before multiple choice');
    assert.equal(evalFor({ file: join(root, 'tiny-task', 'train.jsonl'), kind: 'text' }, found.datasets), undefined, 'no eval file in that format');

    // what New Adapter Config writes from it: a config with no problems by the server's loader
    const text = configTemplate({ model: './tiny-model', train: './tiny-task/train.jsonl', eval: './tiny-task/eval.jsonl', format: 'completion', targetModules: targetModulesFor('LlamaForCausalLM') }, 'found');
    writeFileSync(join(root, 'adapter.moslora.yaml'), text);
    assert.deepEqual(parseConfigText(text, join(root, 'adapter.moslora.yaml')).issues, []);
  });

  it('reads each format by its first record, and writes a config for each', () => {
    assert.equal(kindOf('{"text": "x"}'), 'text');
    assert.equal(kindOf('{"prompt": "p", "completion": "c"}'), 'completion');
    assert.equal(kindOf('{"instruction": "i", "input": "", "output": "o"}'), 'alpaca');
    assert.equal(kindOf('{"messages": [{"role": "user", "content": "hi"}]}'), 'chat');
    assert.equal(kindOf('{"prompt": "p", "choices": ["a", "b"], "answer": 0}'), 'choices');
    for (const line of ['not json', '[1, 2]', '{"question": "?"}', '']) assert.equal(kindOf(line), undefined, line);
    assert.deepEqual(targetModulesFor('GPT2LMHeadModel'), ['c_attn']);
    for (const format of ['text', 'alpaca', 'chat', 'completion'] as const) {
      const text = configTemplate({ model: './m', train: './t.jsonl', format, targetModules: ['c_attn'] }, 'found', ['Also beside the data: x.jsonl (text).']);
      const { config, issues } = parseConfigText(text, '/ws/a.moslora.yaml');
      assert.deepEqual(issues, [], format);
      assert.equal(config?.data.format, format);
      assert.equal(config?.data.eval, undefined, 'no eval file: no eval key');
      assert.match(text, /^# Also beside the data: x\.jsonl \(text\)\.$/m);
    }
  });
});
