// What every tab of the panel shares: the data, the user's choices, the way out to VS Code.
import type { PanelTab, WebviewMessage } from '../../protocol/webview';
import type { Store } from '../lib/store';
import type { XMode } from './chart';

export interface MixerUi {
  module: string | undefined;
  view: 'single' | 'grid';
  /** Show M − M₀ (the first snapshot) instead of M. */
  diff: boolean;
  /** Step shown; null follows the newest snapshot. */
  step: number | null;
}

/** The user's choices; persisted with vscode.setState, so a reopened panel looks the same. */
export interface UiState {
  tab: PanelTab;
  /** TensorBoard's smoothing weight, 0 ≤ w < 1. */
  smoothing: number;
  xMode: XMode;
  logY: boolean;
  compareMetric: string;
  /** Runs ticked in Compare; null means "all of them". */
  compareRuns: string[] | null;
  /** Compare draws an A/B's runs one line each instead of a mean and band per method. */
  compareAbSingle: boolean;
  mixer: MixerUi;
}

export const DEFAULT_UI: UiState = {
  tab: 'training',
  smoothing: 0.6,
  xMode: 'step',
  logY: false,
  compareMetric: 'train/loss',
  compareRuns: null,
  compareAbSingle: false,
  mixer: { module: undefined, view: 'single', diff: false, step: null },
};

export interface Context {
  readonly store: Store;
  readonly ui: UiState;
  post(message: WebviewMessage): void;
  /** The UI state changed: persist it (throttled). */
  saveSoon(): void;
  /** Asks the extension for a run's records, once per page, unless it has sent them whole. */
  ensure(runId: string): void;
  /** Shows this run on the Training and Mixers tabs (a run picker's choice). */
  show(runId: string): void;
}

/** Creates an element from static markup (never from data: data goes in with textContent). */
export function html<T extends HTMLElement = HTMLElement>(markup: string): T {
  const template = document.createElement('template');
  template.innerHTML = markup.trim();
  return template.content.firstElementChild as T;
}

export function $<T extends Element = HTMLElement>(root: ParentNode, selector: string): T {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`panel: no element matches ${selector}`);
  return found;
}
