// The training panel's host side: one WebviewPanel that owns its lifetime (createOrShow, revive
// after a window reload, dispose), serves the built page under a strict CSP with a fresh nonce,
// and translates between the server's jobs and the webview's typed messages. Every message from
// the webview goes through parseWebviewMessage first, and run ids are resolved against the runs
// this extension handed out: anything else is ignored with a log line.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as vscode from 'vscode';
import { runDataRequest } from '../protocol/editor';
import { PANEL_ASSETS, webviewHtml } from '../protocol/webview-page';
import { parseWebviewMessage, type ExtensionMessage, type PanelTab, type QueuedJob, type ThemeKind, type WebviewMessage } from '../protocol/webview';
import type { Ctx, JobChange } from './ctx';
import { isFinal, queuedJobs, runStateOf } from './jobs';
import { openAbReport } from './ab-report';
import { offerFile } from './results';
import { chooseMixerRun, chooseRun, finishedPhase } from './runs';
import type { MetricRecord, MixerSnapshot } from '../protocol/records';
import { commandIds } from '../protocol/commands';

export const PANEL_VIEW_TYPE = 'moslora.training';
const SMOOTHING_KEY = 'moslora.panel.smoothing';
const DEFAULT_SMOOTHING = 0.6;

export interface PanelFocus {
  /** A run id (a run folder's name). */
  runId?: string;
  /** A job's key: its run, once the trainer has named the run folder. */
  jobKey?: string;
  /**
   * Without a run or a job: the running job's run, else the run `chooseRun` (`run`) or
   * `chooseMixerRun` (`mixers`) picks, saying why when it is not the newest. Left out: the
   * panel stays on the run it shows.
   */
  choose?: 'run' | 'mixers';
  tab?: PanelTab;
}

/** Run folder names, as `output.run_name` allows them. */
const RUN_NAME = /^[A-Za-z0-9._-]+$/;

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
  private markAnswered: () => void = () => {};
  /** Settles when the page's `ready` has been answered: other messages wait for it (their run ids come with it). */
  private readonly answered: Promise<void> = new Promise((resolve) => (this.markAnswered = resolve));
  /** The queue as last sent, to send it only when it changes. */
  private queueSent = '';

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
    panel.focus(focus).catch((error: unknown) => ctx.log.warn(`panel: could not pick the run to show: ${error instanceof Error ? error.message : String(error)}`));
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

  /** Shows a run on a tab: the one named, a job's, or the one `choose` picks (see PanelFocus). */
  async focus({ runId, jobKey, choose, tab }: PanelFocus): Promise<void> {
    const withTab = tab ? { tab } : {};
    if (runId) return this.post({ type: 'focus', runId, ...withTab });
    const running = this.ctx.tracker.active().filter((t) => t.job.state !== 'queued');
    const job = jobKey ? this.ctx.tracker.get(jobKey) : choose ? running.at(-1) : undefined;
    if (job && !job.job.runDir) {
      // queued or just started: shown when the trainer names its run folder; the tab at once
      this.focusOnRun = { jobKey: job.key, ...withTab };
      if (tab) this.post({ type: 'focus', tab });
      return;
    }
    if (job) return this.post({ type: 'focus', runId: job.runId, ...withTab });
    if (!choose || !(await this.ctx.serverStarted)) {
      if (tab) this.post({ type: 'focus', tab });
      return;
    }
    const { runs } = await this.ctx.listRuns();
    // what was just listed is the page's list too (a run may have come or gone on disk)
    this.post({ type: 'runs', runs });
    const chosen = (choose === 'mixers' ? chooseMixerRun : chooseRun)(runs, undefined);
    if (!chosen) {
      if (tab) this.post({ type: 'focus', tab });
      return;
    }
    this.post({ type: 'focus', runId: chosen.runId, ...withTab });
    if (chosen.note) void vscode.window.showInformationMessage(`MoSLoRA: ${chosen.note}.`);
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
      if (parsed.message.type !== 'ready') await this.answered;
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
      case 'resume': {
        const runDir = this.ctx.tracker.runIds.dirOf(message.runId);
        if (!runDir) return this.ctx.log.info(`panel: resume for unknown run id ${JSON.stringify(message.runId)} ignored`);
        await vscode.commands.executeCommand(commandIds.resumeTraining, runDir);
        return;
      }
      case 'renameRun':
        await this.renameRun(message.runId);
        return;
      case 'deleteRun':
        await this.deleteRun(message.runId);
        return;
      case 'openAbReport': {
        const runDir = this.ctx.tracker.runIds.dirOf(message.runId);
        if (!runDir) return this.ctx.log.info(`panel: openAbReport for unknown run id ${JSON.stringify(message.runId)} ignored`);
        await openAbReport(dirname(runDir));
        return;
      }
      case 'cancelQueued': {
        const tracked = this.ctx.tracker.get(message.jobKey);
        if (tracked?.job.state !== 'queued') return this.ctx.log.info(`panel: cancelQueued for ${JSON.stringify(message.jobKey)} ignored: no such queued job`);
        await vscode.commands.executeCommand(commandIds.stopTraining, tracked.key);
        return;
      }
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

  /**
   * The page (new or restored) listens: settings, theme, the runs, live jobs and the queue, then
   * anything queued. The page asks for the records of the runs it shows (requestRun).
   */
  private async sendAll(): Promise<void> {
    const queued = this.queued;
    this.queued = [];
    this.ready = true;
    try {
      this.post({ type: 'settings', smoothing: this.ctx.extension.workspaceState.get<number>(SMOOTHING_KEY, DEFAULT_SMOOTHING) });
      this.post({ type: 'theme', kind: themeKind(vscode.window.activeColorTheme.kind) });
      // a panel restored with the window comes back before the server has started
      if (await this.ctx.serverStarted) this.post({ type: 'runs', runs: (await this.ctx.listRuns()).runs });
      for (const tracked of this.ctx.tracker.active().filter((t) => t.job.runDir)) this.post({ type: 'runState', state: runStateOf(tracked) });
      this.queueSent = '';
      this.postQueue();
    } finally {
      this.markAnswered();
    }
    for (const message of queued) this.post(message);
  }

  /** The queued jobs, when they changed since last sent. */
  private postQueue(): void {
    const jobs: QueuedJob[] = queuedJobs(this.ctx.tracker);
    const key = JSON.stringify(jobs);
    if (key === this.queueSent) return;
    this.queueSent = key;
    this.post({ type: 'queue', jobs });
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
    if (this.ready) this.postQueue();
    // before its run folder exists a job has no run id the page could keep (the queue shows it)
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

  /** The open panel lists the runs on disk again (runs trained outside the job queue: an A/B's). */
  static refreshRuns(): void {
    if (TrainingPanel.current?.ready) void TrainingPanel.current.refreshRuns();
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
    void offerFile(`MoSLoRA: exported ${basename(target.fsPath)} (${formatBytes(bytes.byteLength)}) to ${dirname(target.fsPath)}.`, target);
  }

  /** Renames a run's folder (asking for the name); never a run that trains or waits to. */
  private async renameRun(runId: string): Promise<void> {
    const runDir = this.ctx.tracker.runIds.dirOf(runId);
    if (!runDir) return this.ctx.log.info(`panel: renameRun for unknown run id ${JSON.stringify(runId)} ignored`);
    const old = basename(runDir);
    if (this.ctx.jobOfRun(runDir)) {
      void vscode.window.showWarningMessage(`MoSLoRA: ${old} is training or queued; rename it once it has ended.`);
      return;
    }
    const name = await vscode.window.showInputBox({
      title: `MoSLoRA: Rename Run ${old}`,
      prompt: `New name of the run folder (in ${dirname(runDir)})`,
      value: old,
      validateInput: (value) =>
        !RUN_NAME.test(value) ? 'letters, digits, ".", "_" and "-" only' : value !== old && existsSync(join(dirname(runDir), value)) ? `${value} exists` : undefined,
    });
    if (!name || name === old) return;
    const target = join(dirname(runDir), name);
    if (existsSync(target)) throw new Error(`${target} exists`);
    await rename(runDir, target);
    this.ctx.log.info(`panel: renamed run ${runDir} → ${target}`);
    this.ctx.tracker.runMoved(runDir, target);
    this.post({ type: 'runRemoved', runId });
    await this.refreshRuns();
    this.post({ type: 'focus', runId: this.ctx.tracker.runIds.idOf(target) });
  }

  /** Deletes a run's folder after asking; never a run that trains or waits to. */
  private async deleteRun(runId: string): Promise<void> {
    const runDir = this.ctx.tracker.runIds.dirOf(runId);
    if (!runDir) return this.ctx.log.info(`panel: deleteRun for unknown run id ${JSON.stringify(runId)} ignored`);
    const name = basename(runDir);
    if (this.ctx.jobOfRun(runDir)) {
      void vscode.window.showWarningMessage(`MoSLoRA: ${name} is training or queued; stop it before deleting it.`);
      return;
    }
    const choice = await vscode.window.showWarningMessage(
      `Delete run ${name}?`,
      { modal: true, detail: `Its folder goes, with its metrics, checkpoints and adapter, and cannot be brought back:\n${runDir}` },
      'Delete',
    );
    if (choice !== 'Delete') return;
    // asked once more: it may have been resumed while the dialog was open
    if (this.ctx.jobOfRun(runDir)) throw new Error(`${name} started training meanwhile; it was not deleted`);
    await vscode.workspace.fs.delete(vscode.Uri.file(runDir), { recursive: true, useTrash: false });
    this.ctx.log.info(`panel: deleted run ${runDir}`);
    this.ctx.tracker.runMoved(runDir, undefined);
    this.post({ type: 'runRemoved', runId });
    await this.refreshRuns();
    vscode.window.setStatusBarMessage(`MoSLoRA: deleted run ${name}`, 5000);
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

function formatBytes(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
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
