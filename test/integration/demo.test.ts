// The demo's claim: the tiny shipped model cannot do the tiny task, and the example config teaches
// it at the demo's budget. This trains examples/tiny-moslora.moslora.yaml as it is (the MoSLoRA
// half of `moslora demo`, in one thread where the built CLI shares each batch between two) and
// measures before and after with the demo's own functions.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { baseAccuracy, DEMO_QUESTIONS, examplesDir, greedyAnswers, heldOutQuestions } from '../../server/cli/demo';
import { loadConfigFile } from '../../server/config/load';
import { runTrainingJob } from '../../server/engine/session';
import { startBackend } from '../../server/runtime';

let dir: string;

describe('the demo', () => {
  before(async () => {
    await startBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-demo-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the tiny model from about chance to far above it on held-out questions, which it then answers in words', async () => {
    const configPath = join(examplesDir(), 'tiny-moslora.moslora.yaml');
    const config = await loadConfigFile(configPath);
    const questions = await heldOutQuestions(config);
    const chance = 1 / questions[0]!.choices.length;

    const before = await baseAccuracy(config, questions);
    assert.ok(Math.abs(before - chance) < 0.1, `the base model already does the task: ${before} (chance ${chance})`);
    const asked = questions.slice(0, DEMO_QUESTIONS);
    assert.ok((await greedyAnswers(config.model, asked)).some((a) => !a.right), 'the base model already answers the demo\'s questions');

    const summary = await runTrainingJob(configPath, { backend: 'wasm', runDir: join(dir, 'moslora') });
    assert.equal(summary.state, 'done', summary.reason);
    assert.ok(summary.accuracy !== null && summary.accuracy >= 0.8 && summary.accuracy - before >= 0.5, `accuracy ${before} before training, ${summary.accuracy} after`);
    const answers = await greedyAnswers(config.model, asked, join(summary.runDir, 'adapter'));
    assert.deepEqual(answers.map((a) => a.text), asked.map((q) => q.choices[q.answer]), 'the trained adapter answers the demo\'s questions');
    assert.ok(answers.every((a) => a.right), 'each answer ends with the end of the text');
  });
});
