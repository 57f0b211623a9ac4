// Training progress in a terminal (server/cli/progress.ts), from a fixed stream of training events:
// plain lines without a TTY, a redrawn bar on one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressReporter } from '../../server/cli/progress';
import type { TrainEvent } from '../../protocol/trainer';

const events: TrainEvent[] = [
  { type: 'state', state: 'training', runDir: 'runs/a', step: 0, totalSteps: 4 },
  { type: 'metrics', record: { step: 2, kind: 'train', loss: 2.34567, lr: 1e-4, grad_norm: 0.5, tokens_per_s: 1234.4 } },
  { type: 'metrics', record: { step: 2, kind: 'eval', eval_loss: 2.1, accuracy: 0.75 } },
  { type: 'metrics', record: { step: 4, kind: 'train', loss: 1.5, lr: 5e-5, grad_norm: 0.25, tokens_per_s: 1300 } },
  { type: 'state', state: 'done', runDir: 'runs/a', step: 4, totalSteps: 4 },
];

function capture(isTTY: boolean): string {
  let text = '';
  const report = progressReporter({ isTTY, write: (s) => (text += s) }, 'moslora');
  events.forEach(report);
  return text;
}

describe('training progress in a terminal', () => {
  it('without a TTY: one plain line per logged step, eval and the final state', () => {
    const lines = capture(false).trimEnd().split('\n');
    assert.match(lines[0]!, /^moslora step 2\/4 loss 2\.3457 lr 1\.00e-4 grad_norm 0\.500 1234 tok\/s ETA /);
    assert.equal(lines[1], 'moslora eval at step 2: loss 2.1000 accuracy 75.0%');
    assert.match(lines[2]!, /^moslora step 4\/4 loss 1\.5000/);
    assert.equal(lines[3], 'moslora: done at step 4/4');
    assert.ok(!capture(false).includes('\r'), 'no carriage returns in logs');
  });

  it("prints what the engine says when training starts (gradient checkpointing's auto decision)", () => {
    let text = '';
    const report = progressReporter({ isTTY: false, write: (s) => (text += s) }, 'moslora');
    report({ type: 'state', state: 'training', runDir: 'runs/a', step: 0, totalSteps: 4, message: 'gradient checkpointing on (training.gradient_checkpointing: auto): …' });
    assert.equal(text, 'moslora: gradient checkpointing on (training.gradient_checkpointing: auto): …\n');
  });

  it('on a TTY: a redrawn bar with step, loss and tokens/s, then the final state', () => {
    const text = capture(true);
    assert.match(text, /4\/4 \| loss 1\.5000 \| 1300 tok\/s/);
    assert.match(text, /moslora eval at step 2: loss 2\.1000 accuracy 75\.0%/);
    assert.match(text, /moslora: done at step 4\/4\n$/);
  });
});
