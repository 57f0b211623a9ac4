// Training progress in a terminal: a bar (step/total, loss, tokens/s, ETA) on a TTY, plain
// lines otherwise (CI logs, pipes), from the same events the language server streams.
import { SingleBar } from 'cli-progress';
import type { TrainEvent } from '../../protocol/trainer';

export interface ProgressOutput {
  isTTY: boolean;
  write(text: string): void;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function progressReporter(output: ProgressOutput, label: string): (event: TrainEvent) => void {
  let bar: SingleBar | null = null;
  let total = 0;
  let lastLoss = '';
  let tokensPerSecond = '';
  const stepTimes: { step: number; at: number }[] = [];
  const eta = (step: number) => {
    const first = stepTimes[0];
    if (!first || step <= first.step) return '?';
    const rate = (performance.now() - first.at) / 1000 / (step - first.step);
    return formatSeconds(rate * (total - step));
  };
  // On a TTY the bar redraws itself below whatever is written between updates.
  const line = (text: string) => output.write(`${bar ? '\n' : ''}${text}\n`);
  return (event) => {
    if (event.type === 'state') {
      total = event.totalSteps;
      if (event.state === 'training' && output.isTTY && !bar) {
        bar = new SingleBar({
          format: `${label} {bar} {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_text}`,
          stream: { isTTY: true, write: (s: string) => output.write(s) } as unknown as NodeJS.WriteStream,
          hideCursor: true,
          clearOnComplete: false,
        });
        bar.start(total, event.step, { loss: '-', tps: '-', eta_text: '?' });
      }
      if (event.state === 'training') stepTimes.push({ step: event.step, at: performance.now() });
      if (event.state === 'training' && event.message) line(`${label}: ${event.message}`);
      if (event.state === 'done' || event.state === 'cancelled' || event.state === 'failed') {
        bar?.stop();
        bar = null;
        output.write(`${label}: ${event.state} at step ${event.step}/${total}${event.message ? ` — ${event.message}` : ''}\n`);
      }
      return;
    }
    if (event.type === 'metrics' && event.record.kind === 'train') {
      const { step } = event.record;
      lastLoss = Number(event.record.loss).toFixed(4);
      tokensPerSecond = Math.round(Number(event.record.tokens_per_s)).toString();
      if (bar) bar.update(step, { loss: lastLoss, tps: tokensPerSecond, eta_text: eta(step) });
      else output.write(`${label} step ${step}/${total} loss ${lastLoss} lr ${Number(event.record.lr).toExponential(2)} grad_norm ${Number(event.record.grad_norm).toFixed(3)} ${tokensPerSecond} tok/s ETA ${eta(step)}\n`);
      return;
    }
    if (event.type === 'metrics' && event.record.kind === 'eval') {
      const accuracy = event.record.accuracy === undefined ? '' : ` accuracy ${(Number(event.record.accuracy) * 100).toFixed(1)}%`;
      line(`${label} eval at step ${event.record.step}: loss ${Number(event.record.eval_loss).toFixed(4)}${accuracy}`);
    }
  };
}
