// Compare's A/B view: the runs of one A/B drawn per method as the mean over its seeds with a band
// from the lowest to the highest seed (lib/ab-series.ts); a control to draw them one by one, and
// "Open A/B Report".
import { abNames, type AbGroup, type AbMethodSeries } from '../lib/ab-series';
import type { RunData } from '../lib/store';
import type { LineGroup, LineSpec, XMode } from './chart';

/** What names one method of an A/B in Compare's chart and table: "moslora (tiny, mean of 3 seeds)". */
export function abLabel(group: Pick<AbGroup, 'ab' | 'method' | 'runs'>): string {
  return `${group.method} (${group.ab}, mean of ${group.runs.length} seed${group.runs.length === 1 ? '' : 's'})`;
}

/** The chart's lines for one method: the band's upper and lower edges (faint, filled between) and the mean. */
export function abLineGroup(series: AbMethodSeries, xMode: XMode, spec: Pick<LineSpec, 'colour' | 'dash'>): LineGroup {
  const label = abLabel(series);
  const keep = xMode === 'step' ? series.steps.map((_, i) => i) : series.walls.flatMap((w, i) => (Number.isFinite(w) ? [i] : []));
  const pick = (ys: number[]) => keep.map((i) => ys[i]!);
  return {
    x: pick(xMode === 'step' ? series.steps : series.walls),
    ys: [pick(series.max), pick(series.min), pick(series.mean)],
    specs: [
      { ...spec, label: `${label} highest`, faint: true, hideInLegend: true, bandUpper: true },
      { ...spec, label: `${label} lowest`, faint: true, hideInLegend: true },
      { ...spec, label },
    ],
  };
}

/**
 * Compare's A/B controls in `container`: shown when the runs include an A/B's; a checkbox to draw
 * its runs one by one, and "Open A/B Report" per A/B.
 */
export function renderAbControls(container: HTMLElement, runs: readonly RunData[], single: boolean, on: { toggle: (single: boolean) => void; open: (runId: string) => void }): void {
  const abs = abNames(runs);
  container.hidden = abs.length === 0;
  const key = `${single}\u0001${abs.map((a) => `${a.name}\u0000${a.runId}`).join('\u0001')}`;
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  const box = document.createElement('vscode-checkbox') as HTMLElement & { checked: boolean; label: string };
  box.className = 'ab-single';
  box.label = 'Show A/B runs as single runs';
  box.checked = single;
  box.addEventListener('change', () => on.toggle(box.checked));
  const buttons = abs.map(({ name, runId }) => {
    const button = document.createElement('vscode-button');
    button.className = 'open-ab-report';
    button.dataset.ab = name;
    button.textContent = abs.length === 1 ? 'Open A/B Report' : `Open A/B Report: ${name}`;
    button.addEventListener('click', () => on.open(runId));
    return button;
  });
  container.replaceChildren(box, ...buttons);
}
