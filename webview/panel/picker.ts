// The run picker of the Training and Mixers tabs: every run, newest first, each with its method,
// state and last logged loss. Both pickers show the same choice (the store's current run).
import { formatNumber } from '../../protocol/format';
import type { RunData } from '../lib/store';
import { html, type Context } from './context';

/** What a run picker says of a run: name · method · state · loss. */
export function runLabel(run: RunData): string {
  const loss = run.lastLoss();
  return [run.name, run.method ?? '', run.state?.phase ?? '', loss !== undefined ? `loss ${formatNumber(loss)}` : ''].filter(Boolean).join(' · ');
}

export class RunPicker {
  readonly element: HTMLElement;
  private readonly select: HTMLElement & { value: string };
  private key = '';

  constructor(
    private readonly ctx: Context,
    /** Marks runs that cannot show on this tab (the Mixers tab: a LoRA run has no mixer). */
    private readonly note: (run: RunData) => string = () => '',
  ) {
    this.element = html(`<label class="control run-picker">Run <vscode-single-select class="run-select" aria-label="Run to show"></vscode-single-select></label>`);
    this.select = this.element.querySelector('vscode-single-select')!;
    this.select.addEventListener('change', () => {
      if (this.select.value && this.select.value !== this.ctx.store.currentRunId) this.ctx.show(this.select.value);
    });
  }

  update(): void {
    const runs = this.ctx.store.newestFirst();
    this.element.hidden = runs.length === 0;
    const labels = runs.map((run) => [run.runId, runLabel(run) + this.note(run)] as const);
    const key = JSON.stringify(labels);
    if (key !== this.key) {
      this.key = key;
      this.select.replaceChildren(
        ...labels.map(([runId, label]) => {
          const option = document.createElement('vscode-option');
          option.setAttribute('value', runId);
          option.textContent = label;
          return option;
        }),
      );
    }
    const current = this.ctx.store.currentRunId ?? '';
    if (this.select.value !== current) this.select.value = current;
  }
}
