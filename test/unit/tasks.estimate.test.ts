// The Estimate task (server/tasks/estimate.ts) on the shipped example, from headers and line
// counts: LoRA and MoSLoRA parameters, and the steps as the trainer counts them; a refusal in one
// line that never quotes a dataset, and a FIFO or an oversized dataset answered, not waited on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { configTemplate, examplePaths } from '../../extension/template';
import { FactCache } from '../../server/lsp/facts';
import { estimateConfig } from '../../server/tasks/estimate';

const ROOT = resolve(import.meta.dirname, '..', '..');
const temp = mkdtempSync(join(tmpdir(), 'moslora-tasks-'));
after(() => rmSync(temp, { recursive: true, force: true }));

describe('estimateConfig', () => {
  const facts = new FactCache(() => {});
  after(() => facts.dispose());
  const write = (name: string, text: string) => {
    writeFileSync(join(temp, name), text);
    return { temp: join(temp, name) };
  };

  it("counts LoRA and MoSLoRA parameters of the tiny Llama and the run's steps", async () => {
    // the "New Adapter Config" template, written in a folder beside the repository's examples
    const { temp: file } = write('estimate.moslora.yaml', configTemplate(examplePaths(temp, join(ROOT, 'examples')), 'example'));
    const e = await estimateConfig(file, facts);
    // per layer at r = 8: q 8·(128+128), k and v 8·(128+64), up and down 8·(128+256); 4 layers
    const lora = 4 * 8 * (256 + 192 + 192 + 384 + 384);
    assert.deepEqual(
      [e.architecture, e.method, e.r, e.modules, e.baseParameters, e.lora, e.moslora, e.trainable, e.trainExamples, e.totalSteps],
      ['LlamaForCausalLM', 'moslora', 8, 20, 722_048, lora, lora + 20 * 8 * 8, lora + 20 * 8 * 8, 1500, 60],
    );
  });

  it('computes steps from epochs as the trainer does, after an eval split', async () => {
    const model = join(ROOT, 'examples', 'tiny-model');
    const train = join(ROOT, 'examples', 'tiny-task', 'train.jsonl');
    const { temp: file } = write(
      'epochs.moslora.yaml',
      `model: ${model}\nmethod: lora\nr: 4\ndata:\n  train: ${train}\n  eval_split: 0.1\n  packing: true\ntraining:\n  epochs: 2\n  batch_size: 16\n  gradient_accumulation: 2\n`,
    );
    const e = await estimateConfig(file, facts);
    // 1500 − round(150) = 1350 examples; ceil(1350/16) = 85 batches; 2 epochs / 2 accumulation
    assert.equal(e.trainExamples, 1350);
    assert.equal(e.totalSteps, 85);
    assert.equal(e.trainable, e.lora);
    assert.match(e.note ?? '', /packing/);
  });

  it('says what is wrong with a config it cannot estimate', async () => {
    const { temp: file } = write('bad.moslora.yaml', `model: ${temp}/nowhere\ndata:\n  train: x.jsonl\n`);
    await assert.rejects(estimateConfig(file, facts), /model: folder not found/);
  });

  const model = join(ROOT, 'examples', 'tiny-model');
  const secret = 'canary-b51f-never-shown';

  it('refuses in one line: the first problem of a config and how many more', async () => {
    const { temp: file } = write('many.moslora.yaml', `model: ${model}\nr: -1\nalpha: 0\ndata:\n  train: x.jsonl\n`);
    await assert.rejects(estimateConfig(file, facts), { message: `${file}:2:4: error: r: needs a value > 0, got number -1 (and 1 more; the Problems panel lists them)` });
  });

  it('names a bad dataset line without quoting it, and opens only a regular file', async () => {
    const data = join(temp, 'secret.jsonl');
    writeFileSync(data, `{"prompt": "a", "completion": "b"}\n${secret}\n"${secret}"\n`);
    const { temp: file } = write('secret.moslora.yaml', `model: ${model}\ndata:\n  train: ${data}\n`);
    await assert.rejects(estimateConfig(file, facts), { message: `${file}: data.train: ${data} line 2: invalid JSON (and 1 more)` });
    const fifo = join(temp, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    const { temp: piped } = write('fifo.moslora.yaml', `model: ${model}\ndata:\n  train: ${fifo}\n`);
    await assert.rejects(estimateConfig(piped, facts), { message: `${piped}: data.train: ${fifo}: is a FIFO (named pipe), not a regular file; the dataset must be a file` });
  });

  it('counts the lines of a dataset too large to read in the editor, and says so', async () => {
    const data = join(temp, 'large.jsonl');
    const line = `{"prompt": "${'p'.repeat(1000)}", "completion": "c"}\n`;
    writeFileSync(data, `${line.repeat(70_000)}\n  \n`);
    const { temp: file } = write('large.moslora.yaml', `model: ${model}\ndata:\n  train: ${data}\ntraining:\n  max_steps: 10\n`);
    const e = await estimateConfig(file, facts);
    assert.equal(e.trainExamples, 70_000);
    assert.equal(e.note, `${data} is 69 MiB: its non-empty lines are counted as examples, unchecked`);
  });
});
