// The training panel's host side: one WebviewPanel that owns its lifetime (createOrShow, revive
// after a window reload, dispose), serves the built page under a strict CSP with a fresh nonce,
// and translates between the server's jobs and the webview's typed messages. Every message from
// the webview goes through parseWebviewMessage first, and run ids are resolved against the runs
// this extension handed out: anything else is ignored with a log line.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { runDataRequest } from '../protocol/editor';
import { PANEL_ASSETS, webviewHtml } from '../protocol/webview-page';
import { parseWebviewMessage, type ExtensionMessage, type PanelTab, type ThemeKind, type WebviewMessage } from '../protocol/webview';
import type { Ctx, JobChange } from './ctx';
import { isFinal, runStateOf } from './jobs';
import { finishedPhase } from './runs';
import type { MetricRecord, MixerSnapshot } from '../protocol/records';
import { commandIds } from '../protocol/commands';

export const PANEL_VIEW_TYPE = 'moslora.training';
const SMOOTHING_KEY = 'moslora.panel.smoothing';
const DEFAULT_SMOOTHING = 0.6;

export interface PanelFocus {
  /** A run id (a run folder's name); default: the current job's run, else the newest on disk. */
  runId?: string;
  tab?: PanelTab;
}

/** Records of a run being read from disk: live updates wait here, then go after what the disk had. */
interface Loading {
  metrics: MetricRecord[];
  mixers: MixerSnapshot[];
}

export class TrainingPanel {
  private static current: TrainingPanel | undefined;

  private readonly disposables: vscode.Disposable[] = [];
  private ready = false;
  /** Messages posted before the page said `ready`: sent right after what `ready` sends. */
  private queued: ExtensionMessage[] = [];
  private readonly loading = new Map<string, Loading>();
  /** A job to show once it has a run folder (a job reaches the page only then: run ids are folder names). */
  private focusOnRun: { jobKey: string; tab?: PanelTab } | undefined;
  private disposed = false;

  static get instance(): TrainingPanel | undefined {
    return TrainingPanel.current;
  }

  /** Shows the panel (beside the editor), creating it if needed, and focuses a run and a tab. */
  static createOrShow(ctx: Ctx, focus: PanelFocus = {}): TrainingPanel {
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    let panel = TrainingPanel.current;
    if (panel) {
      panel.panel.reveal(undefined, true);
    } else {
      const webviewPanel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'MoSLoRA Training', { viewColumn: column, preserveFocus: true }, TrainingPanel.options(ctx));
      panel = new TrainingPanel(webviewPanel, ctx);
    }
    void panel.focus(focus);
    return panel;
  }

  /** A panel VS Code restored after a reload: its page restores itself, then we re-send from disk. */
  static revive(webviewPanel: vscode.WebviewPanel, ctx: Ctx): TrainingPanel {
    webviewPanel.webview.options = TrainingPanel.options(ctx);
    return new TrainingPanel(webviewPanel, ctx);
  }

  private static options(ctx: Ctx): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    return {
      enableScripts: true,
      // the page keeps its own state with setState; the extension re-sends the data on `ready`
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(ctx.extension.extensionUri, 'dist', 'webview')],
    };
  }

  private constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly ctx: Ctx,
  ) {
    TrainingPanel.current = this;
    panel.iconPath = vscode.Uri.joinPath(ctx.extension.extensionUri, 'extension', 'media', 'moslora.svg');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw: unknown) => void this.receive(raw)),
      ctx.onJob((change) => this.jobChanged(change)),
      vscode.window.onDidChangeActiveColorTheme((theme) => this.post({ type: 'theme', kind: themeKind(theme.kind) })),
    );
  }

  private html(): string {
    const webview = this.panel.webview;
    const asset = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.ctx.extension.extensionUri, 'dist', 'webview', name)).toString();
    return webviewHtml({
      cspSource: webview.cspSource,
      nonce: randomBytes(16).toString('base64'),
      scriptUri: asset(PANEL_ASSETS.script),
      styleUri: asset(PANEL_ASSETS.style),
    });
  }

  /** Shows a run (default: the current job's, else the newest on disk) on a tab. */
  async focus({ runId, tab }: PanelFocus): Promise<void> {
    const current = this.ctx.tracker.current();
    if (!runId && current && !current.job.runDir) {
      // queued or just started: shown when the trainer names its run folder
      this.focusOnRun = { jobKey: current.key, ...(tab ? { tab } : {}) };
      return;
    }
    let id = runId ?? current?.runId;
    if (!id && (await this.ctx.serverStarted)) {
      id = await this.ctx.listRuns().then(
        ({ runs }) => runs[0]?.runId,
        () => undefined,
      );
    }
    if (id) this.post({ type: 'focus', runId: id, ...(tab ? { tab } : {}) });
  }

  post(message: ExtensionMessage): void {
    if (this.disposed) return;
    if (!this.ready) {
      this.queued.push(message);
      return;
    }
    void this.panel.webview.postMessage(message);
  }

  // -------------------------------------------------------------------------------------------
  // From the webview

  private async receive(raw: unknown): Promise<void> {
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.ctx.log.warn(`panel: refused a message: ${parsed.error}`);
      return;
    }
    try {
      await this.handle(parsed.message);
    } catch (error) {
      this.ctx.showError(`the training panel's "${parsed.message.type}"`, error);
    }
  }

  private async handle(message: WebviewMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        await this.sendAll();
        return;
      case 'stop': {
        const tracked = this.ctx.tracker.byRunId(message.runId);
        if (!tracked || isFinal(tracked.job.state)) {
          this.ctx.log.info(`panel: stop for ${JSON.stringify(message.runId)} ignored: no running job has that run`);
          return;
        }
        await vscode.commands.executeCommand(commandIds.stopTraining, tracked.key);
        return;
      }
      case 'requestRun':
        if (!this.ctx.tracker.runIds.dirOf(message.runId)) {
          this.ctx.log.info(`panel: requestRun for unknown run id ${JSON.stringify(message.runId)} ignored`);
          return;
        }
        await this.loadRun(message.runId);
        return;
      case 'exportCsv':
        await this.save(message.fileName, Buffer.from(message.csv, 'utf8'), { CSV: ['csv'] });
        return;
      case 'exportPng':
        await this.save(message.fileName, Buffer.from(message.dataUrl.slice(message.dataUrl.indexOf(',') + 1), 'base64'), { 'PNG image': ['png'] });
        return;
      case 'setSmoothing':
        await this.ctx.extension.workspaceState.update(SMOOTHING_KEY, message.weight);
        return;
      case 'error':
        this.ctx.log.error(`panel: ${message.message}`);
        return;
    }
  }

  /** The page (new or restored) listens: settings, theme, the runs, live jobs, then anything queued. */
  private async sendAll(): Promise<void> {
    const queued = this.queued;
    this.queued = [];
    this.ready = true;
    this.post({ type: 'settings', smoothing: this.ctx.extension.workspaceState.get<number>(SMOOTHING_KEY, DEFAULT_SMOOTHING) });
    this.post({ type: 'theme', kind: themeKind(vscode.window.activeColorTheme.kind) });
    let newest: string | undefined;
    // a panel restored with the window comes back before the server has started
    if (await this.ctx.serverStarted) {
      const { runs } = await this.ctx.listRuns();
      this.post({ type: 'runs', runs });
      newest = runs[0]?.runId;
    }
    const active = this.ctx.tracker.active().filter((tracked) => tracked.job.runDir);
    for (const tracked of active) this.post({ type: 'runState', state: runStateOf(tracked) });
    // the run shown: a live job's, else the newest on disk; its records come from metrics.jsonl
    const shown = active.at(-1)?.runId ?? this.ctx.tracker.current()?.runId ?? newest;
    if (shown && this.ctx.tracker.runIds.dirOf(shown)) await this.loadRun(shown);
    for (const message of queued) this.post(message);
  }

  /** Sends a run from disk (metrics.jsonl is the truth), then the live records that came meanwhile. */
  private async loadRun(runId: string): Promise<void> {
    const runDir = this.ctx.tracker.runIds.dirOf(runId);
    if (!runDir || this.loading.has(runId)) return;
    const pending: Loading = { metrics: [], mixers: [] };
    this.loading.set(runId, pending);
    try {
      const data = await this.ctx.ready().client.sendRequest(runDataRequest, { runDir });
      const tracked = this.ctx.tracker.byRunId(runId);
      if (tracked) {
        this.post({ type: 'runState', state: runStateOf(tracked) });
      } else {
        const summary = data.summary;
        const last = data.metrics.at(-1)?.step ?? 0;
        const text = (key: string) => (typeof summary?.[key] === 'string' ? (summary[key] as string) : '');
        this.post({
          type: 'runState',
          state: {
            runId,
            name: runDir.split(/[\\/]/).at(-1) ?? runId,
            phase: finishedPhase(summary),
            step: typeof summary?.steps === 'number' ? summary.steps : last,
            total: typeof summary?.totalSteps === 'number' ? summary.totalSteps : last,
            backend: text('backend'),
            device: text('device'),
            startedAt: null,
            ...(text('reason') ? { reason: text('reason') } : {}),
          },
        });
      }
      const lastMetric = maxStep(data.metrics);
      const lastMixer = maxStep(data.mixers);
      this.post({ type: 'metrics', runId, records: [...data.metrics, ...pending.metrics.filter((r) => r.step > lastMetric)], replace: true });
      this.post({ type: 'mixers', runId, snapshots: [...data.mixers, ...pending.mixers.filter((s) => s.step > lastMixer)], replace: true });
    } finally {
      this.loading.delete(runId);
    }
  }

  // -------------------------------------------------------------------------------------------
  // From the server

  private jobChanged({ tracked, update, runIdChanged }: JobChange): void {
    // before its run folder exists a job has no run id the page could keep (the status bar shows it)
    if (!tracked.job.runDir) return;
    this.post({ type: 'runState', state: runStateOf(tracked) });
    if (this.focusOnRun?.jobKey === tracked.key) {
      this.post({ type: 'focus', runId: tracked.runId, ...(this.focusOnRun.tab ? { tab: this.focusOnRun.tab } : {}) });
      this.focusOnRun = undefined;
    }
    const loading = this.loading.get(tracked.runId);
    if (loading) {
      loading.metrics.push(...update.metrics);
      loading.mixers.push(...update.mixers);
    } else {
      if (update.metrics.length) this.post({ type: 'metrics', runId: tracked.runId, records: update.metrics });
      if (update.mixers.length) this.post({ type: 'mixers', runId: tracked.runId, snapshots: update.mixers });
    }
    if (!this.ready) return;
    // a job that just got its run folder: what a resumed run had before comes from disk
    if (runIdChanged && this.ctx.tracker.runIds.dirOf(tracked.runId)) void this.loadRun(tracked.runId).catch((error: unknown) => this.ctx.log.warn(`panel: ${String(error)}`));
    // ... and the Compare list changes, as it does when a job ends
    if (runIdChanged || isFinal(tracked.job.state)) void this.refreshRuns();
  }

  private async refreshRuns(): Promise<void> {
    try {
      this.post({ type: 'runs', runs: (await this.ctx.listRuns()).runs });
    } catch (error) {
      this.ctx.log.warn(`panel: could not list runs: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async save(fileName: string, bytes: Uint8Array, filters: Record<string, string[]>): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({ ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, fileName) } : {}), filters, saveLabel: 'Export' });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, bytes);
    this.ctx.log.info(`panel: exported ${target.fsPath} (${bytes.byteLength} bytes)`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (TrainingPanel.current === this) TrainingPanel.current = undefined;
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }
}

/** Restores the panel after a window reload (registered in activate, before anything awaits). */
export function registerPanelSerializer(ctx: Ctx): vscode.Disposable {
  return vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, {
    deserializeWebviewPanel: async (webviewPanel) => {
      TrainingPanel.revive(webviewPanel, ctx);
    },
  });
}

function maxStep(records: readonly { step: number }[]): number {
  let max = -1;
  for (const r of records) if (r.step > max) max = r.step;
  return max;
}

export function themeKind(kind: vscode.ColorThemeKind): ThemeKind {
  switch (kind) {
    case vscode.ColorThemeKind.Light:
      return 'light';
    case vscode.ColorThemeKind.HighContrast:
      return 'highContrast';
    case vscode.ColorThemeKind.HighContrastLight:
      return 'highContrastLight';
    default:
      return 'dark';
  }
}
