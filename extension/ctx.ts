// The extension's one context: the language client (and its restarts), the settings facade, the
// jobs the server reports, the output channels. Commands, the panel and the status bar are built
// over it. `CtxInit` is a context whose server is running: commands that talk to the server
// take one (`ctx.ready()` waits for it or says why there is none).
import { dirname } from 'node:path';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  TransportKind,
  type CloseHandlerResult,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
} from 'vscode-languageclient/node';
import { jobUpdateNotification, listRunsRequest, settingsNotification, type JobUpdate, type ServerSettings, type RunFolder } from '../protocol/editor';
import type { RunListing } from '../protocol/webview';
import { Config, SECTION, SETTINGS } from './config';
import { isFinal, JobTracker, runStateOf, type Applied, type TrackedJob } from './jobs';
import { RestartBudget } from './restarts';
import { listingOf, newestFirst, readRunConfig, runsDirOf } from './runs';
import { formatDuration, formatNumber } from '../protocol/format';
import { commandIds } from '../protocol/commands';

export const CONFIG_GLOB = '**/*.moslora.{yaml,yml,json}';
const EXCLUDE_GLOB = '{**/node_modules/**,**/.git/**}';

export type CtxInit = Ctx & { readonly client: LanguageClient };

/** A job update as the rest of the extension sees it: the tracked job and the records that came with it. */
export interface JobChange extends Applied {
  update: JobUpdate;
}

export class Ctx implements vscode.Disposable {
  readonly config: Config;
  /** The extension's own log: panel errors, refused webview messages, command failures. */
  readonly log: vscode.LogOutputChannel;
  /** A failed job's output, shown on request. */
  readonly jobLog: vscode.OutputChannel;
  readonly serverLog: vscode.LogOutputChannel;
  readonly tracker = new JobTracker();
  readonly restarts = new RestartBudget(5, 3 * 60_000);

  private _client: LanguageClient | undefined;
  private markStarted: (started: boolean) => void = () => {};
  /** Settles once the first server start ends: true when it runs. */
  readonly serverStarted = new Promise<boolean>((resolve) => (this.markStarted = resolve));
  private readonly jobEmitter = new vscode.EventEmitter<JobChange>();
  /** Every job update (server notification, startTraining answer, server gone). */
  readonly onJob = this.jobEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  /** Output channels, closed after the server has stopped (see shutdown). */
  private readonly channels: vscode.Disposable[] = [];
  private stopped: Promise<void> | undefined;

  constructor(readonly extension: vscode.ExtensionContext) {
    this.config = new Config(
      { get: (key) => vscode.workspace.getConfiguration(SECTION).get(key) },
      () => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    );
    this.log = vscode.window.createOutputChannel('MoSLoRA Studio', { log: true });
    this.jobLog = vscode.window.createOutputChannel('MoSLoRA Job Log');
    this.serverLog = vscode.window.createOutputChannel('MoSLoRA Server', { log: true });
    this.channels.push(this.log, this.jobLog, this.serverLog);
    this.disposables.push(this.jobEmitter);
    // One listener for every server this context starts (restarts included): the running one hears.
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((change) => {
        const client = this._client;
        if (change.affectsConfiguration(`${SECTION}.${SETTINGS.runsDirectory}`) && client?.isRunning()) {
          void client.sendNotification(settingsNotification, this.serverSettings());
        }
      }),
    );
  }

  get client(): LanguageClient | undefined {
    return this._client;
  }

  /** Creates the client and starts the server; throws when it cannot start. */
  async start(): Promise<CtxInit> {
    const module = this.extension.asAbsolutePath('dist/server.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.stdio },
      debug: { module, transport: TransportKind.stdio, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ language: 'moslora-config' }],
      initializationOptions: this.serverSettings(),
      outputChannel: this.serverLog,
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult => ({ action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => this.serverClosed(),
      },
    };
    // The id 'moslora' makes the client read `moslora.trace.server` for its trace level.
    const client = new LanguageClient(SECTION, 'MoSLoRA Server', serverOptions, clientOptions);
    client.onNotification(jobUpdateNotification, (update: JobUpdate) => {
      this.receive(update);
    });
    this._client = client;
    try {
      await client.start();
    } catch (error) {
      this.markStarted(false);
      throw error;
    }
    this.markStarted(true);
    return this as CtxInit;
  }

  /** The context with a running server, or an error that says why there is none. */
  ready(): CtxInit {
    if (this._client?.state !== State.Running) {
      throw new Error('the MoSLoRA server is not running. Look at "MoSLoRA: Show Server Log", then run "MoSLoRA: Restart Server".');
    }
    return this as CtxInit;
  }

  /** A job update from the server, or the answer to startTraining. */
  receive(update: JobUpdate): TrackedJob {
    const applied = this.tracker.apply(update, this.config.backend);
    this.jobEmitter.fire({ ...applied, update });
    // a failure at once; a success once its summary (final loss, eval) has come
    const { tracked, finished, summarized } = applied;
    if ((finished && tracked.job.state === 'failed') || (summarized && tracked.job.state === 'done')) this.reportFinished(tracked);
    return applied.tracked;
  }

  /** "MoSLoRA: Restart Server": a fresh server and a fresh crash budget. */
  async restartServer(): Promise<void> {
    this.restarts.reset();
    const client = this._client;
    if (!client) return;
    if (client.state === State.Running) await client.stop();
    this.serverGone('the MoSLoRA server was restarted; the job stopped with it (it saved a checkpoint when it could)');
    await client.start();
  }

  private serverGone(reason: string): TrackedJob[] {
    const lost = this.tracker.serverGone(reason);
    for (const tracked of lost) {
      this.jobEmitter.fire({ tracked, finished: true, runIdChanged: false, summarized: false, update: { job: tracked.job, metrics: [], mixers: [] } });
    }
    return lost;
  }

  /** The server's connection closed without a stop: say so once, and restart it within the budget. */
  private serverClosed(): CloseHandlerResult {
    const lost = this.serverGone('the MoSLoRA server exited while the job ran; the trainer stopped with it. Resume continues from its last checkpoint.');
    const { restart, count } = this.restarts.crashed();
    const jobs = lost.length ? ` ${lost.map((t) => t.name).join(', ')} stopped with it.` : '';
    const window = this.restarts.describeWindow();
    if (restart) {
      this.log.warn(`server crashed (${count} of ${this.restarts.max} allowed in ${window}); restarting`);
      void vscode.window
        .showWarningMessage(`MoSLoRA: the server crashed and was restarted (${count} of ${this.restarts.max} in ${window}).${jobs}`, 'Show Server Log')
        .then((choice) => choice && this.serverLog.show());
      return { action: CloseAction.Restart, handled: true };
    }
    this.log.error(`server crashed ${count} times in ${window}; not restarting`);
    void vscode.window
      .showErrorMessage(
        `MoSLoRA: the server crashed ${count} times in the last ${window} and will not be restarted.${jobs} Look at its log, then run "MoSLoRA: Restart Server".`,
        'Show Server Log',
        'Restart Server',
      )
      .then((choice) => {
        if (choice === 'Show Server Log') this.serverLog.show();
        if (choice === 'Restart Server') void this.restartServer().catch((error: unknown) => this.showError('Restart Server', error));
      });
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  /** A job ended: a failure once with its reason and its log; a success with its figures. */
  private reportFinished(tracked: TrackedJob): void {
    const { job } = tracked;
    if (job.state === 'failed') {
      const reason = (job.message ?? 'no reason given').split('\n')[0];
      this.log.error(`job ${tracked.name} failed: ${job.message ?? ''}`);
      void vscode.window.showErrorMessage(`MoSLoRA: training ${tracked.name} failed: ${reason}`, 'Show Job Log', 'Open Training Panel').then((choice) => {
        if (choice === 'Show Job Log') this.showJobLog(tracked);
        if (choice === 'Open Training Panel') void vscode.commands.executeCommand(commandIds.openPanel);
      });
    } else if (job.state === 'done') {
      const s = job.summary;
      const figures = [
        s?.finalLoss != null ? `loss ${formatNumber(s.finalLoss)}` : '',
        s?.evalLoss != null ? `eval loss ${formatNumber(s.evalLoss)}` : '',
        s?.accuracy != null ? `accuracy ${(100 * s.accuracy).toFixed(1)} %` : '',
        s ? `in ${formatDuration(s.wallSeconds)}` : '',
      ].filter(Boolean);
      void vscode.window
        .showInformationMessage(`MoSLoRA: ${tracked.name} done${figures.length ? `: ${figures.join(', ')}` : ''}.`, 'Open Training Panel', 'Try Adapter')
        .then((choice) => {
          if (choice === 'Open Training Panel') void vscode.commands.executeCommand(commandIds.openPanel);
          if (choice === 'Try Adapter') void vscode.commands.executeCommand(commandIds.tryAdapter);
        });
    }
  }

  showJobLog(tracked: TrackedJob): void {
    const { job } = tracked;
    this.jobLog.clear();
    this.jobLog.appendLine(`${tracked.name}: ${job.state} at step ${job.step}/${job.totalSteps}`);
    this.jobLog.appendLine(`config: ${job.request.configPath}`);
    if (job.runDir) this.jobLog.appendLine(`run:    ${job.runDir}`);
    if (job.message) this.jobLog.appendLine(`\n${job.message}`);
    if (job.lastOutput.length) this.jobLog.appendLine(`\nThe trainer's last output:\n${job.lastOutput.join('\n')}`);
    this.jobLog.show(true);
  }

  /** Logs an error and shows it once, in words (a cancelled operation shows nothing). */
  showError(what: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this.log.error(`${what}: ${error instanceof Error && error.stack ? error.stack : message}`);
    void vscode.window.showErrorMessage(`MoSLoRA: ${what}: ${message}`);
  }

  /** What the server reads of the editor's settings (protocol: ServerSettings). */
  private serverSettings(): ServerSettings {
    return { runsDirectory: this.config.runsDirectory ?? null };
  }

  /** The workspace's adapter configs. */
  async findConfigs(): Promise<vscode.Uri[]> {
    return vscode.workspace.findFiles(CONFIG_GLOB, EXCLUDE_GLOB, 200);
  }

  /**
   * Where runs are: `moslora.runsDirectory` when set; else each workspace config's own
   * `output.runs_dir`. Live jobs' runs folders are always included.
   */
  async runsDirs(): Promise<string[]> {
    const dirs = new Set<string>();
    const setting = this.config.runsDirectory;
    if (setting) {
      dirs.add(setting);
    } else {
      for (const uri of await this.findConfigs()) {
        const text = Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
        dirs.add(runsDirOf(text, uri.fsPath));
      }
    }
    for (const tracked of this.tracker.all()) if (tracked.job.runDir) dirs.add(dirname(tracked.job.runDir));
    return [...dirs];
  }

  /** Every run on disk, newest first, in the webview's terms (live jobs with their live state). */
  async listRuns(): Promise<{ runs: RunListing[]; onDisk: RunFolder[] }> {
    const onDisk = await newestFirst(await this.ready().client.sendRequest(listRunsRequest, { runsDirs: await this.runsDirs() }));
    const runs = await Promise.all(
      onDisk.map(async (run) => {
        const listing = listingOf(run, this.tracker.runIds, await readRunConfig(run.runDir));
        const live = this.tracker.byRunId(listing.runId);
        if (live) {
          listing.state = runStateOf(live);
          if (!isFinal(live.job.state)) delete listing.resumable;
        }
        return listing;
      }),
    );
    return { runs, onDisk };
  }

  /** The live job (running or queued) that trains or will train this run folder, if any. */
  jobOfRun(runDir: string): TrackedJob | undefined {
    return this.tracker.active().find((t) => t.job.runDir === runDir || t.job.request.resumeRunDir === runDir);
  }

  /**
   * Deactivation: stops the server, then closes the output channels. VS Code disposes the
   * subscriptions right after calling deactivate, without waiting for it; the language client
   * still writes to its channel while it stops, and a closed channel throws "Channel has been
   * closed". So the channels close only once the client has stopped.
   */
  shutdown(): Promise<void> {
    this.stopped ??= (async () => {
      try {
        if (this._client?.isRunning()) await this._client.stop();
      } catch {
        // stopping a server that is already gone
      } finally {
        for (const channel of this.channels) channel.dispose();
      }
    })();
    return this.stopped;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    void this.shutdown();
  }
}
