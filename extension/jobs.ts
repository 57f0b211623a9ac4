// The jobs the server reports, as the editor follows them: pure bookkeeping (no 'vscode'), so the
// state translation, progress, ETA and "tell the user once" rules are unit-tested on their own.
//
// A job is known by the server's id, which restarts at 1 with the server: keys carry the
// server's generation. A job's run id (what the webview calls it) is its run folder's name once
// the trainer has made one; before that (queued, loading) a provisional `job-<n>`.
import { basename } from 'node:path';
import type { JobInfo, JobUpdate } from '../protocol/editor';
import type { QueuedJob, RunPhase, RunState } from '../protocol/webview';
import { formatCount, formatDuration, formatNumber } from '../protocol/format';
import { RunIds } from './runIds';
import type { MetricRecord } from '../protocol/records';

export type JobState = JobInfo['state'];

const FINAL: readonly JobState[] = ['done', 'cancelled', 'failed'];

export function isFinal(state: JobState): boolean {
  return FINAL.includes(state);
}

/** The server's job states in the webview's words: a cancelled job is one the user stopped. */
export function phaseOf(state: JobState): RunPhase {
  switch (state) {
    case 'cancelled':
      return 'stopped';
    case 'queued':
    case 'loading':
    case 'training':
    case 'saving':
    case 'done':
    case 'failed':
      return state;
  }
}

/** "tiny" for /work/tiny.moslora.yaml. */
export function configName(configPath: string): string {
  return basename(configPath).replace(/\.moslora\.(ya?ml|json)$/i, '');
}

/** Steps per second over the last few logged train records (a window: a warm-up step is slow). */
export class Progress {
  private readonly window: { step: number; wall: number }[] = [];
  lastLoss: number | undefined;

  constructor(private readonly size = 20) {}

  add(records: readonly MetricRecord[]): void {
    for (const record of records) {
      if (record.kind !== 'train') continue;
      if (typeof record.loss === 'number') this.lastLoss = record.loss;
      if (typeof record.wall_s === 'number') {
        if (this.window.length && record.step <= this.window.at(-1)!.step) this.window.length = 0; // a resume went back
        this.window.push({ step: record.step, wall: record.wall_s });
        if (this.window.length > this.size) this.window.shift();
      }
    }
  }

  /** Optimizer steps per second, once two logged steps are known. */
  get rate(): number | undefined {
    const first = this.window[0];
    const last = this.window.at(-1);
    if (!first || !last || last.wall <= first.wall || last.step <= first.step) return undefined;
    return (last.step - first.step) / (last.wall - first.wall);
  }

  /** Seconds left to reach `total` from `step`. */
  eta(step: number, total: number): number | undefined {
    const rate = this.rate;
    return rate && total > step ? (total - step) / rate : undefined;
  }
}

export interface TrackedJob {
  /** `<server generation>:<job id>`. */
  readonly key: string;
  job: JobInfo;
  runId: string;
  name: string;
  /** Epoch ms when the editor first saw it leave the queue. */
  startedAt: number | null;
  finishedAt?: number;
  readonly progress: Progress;
  /** What backend the editor asked for (`moslora.backend`), until the trainer reports its own. */
  requestedBackend: string;
}

export interface Applied {
  tracked: TrackedJob;
  /** The job reached done, cancelled or failed with this update (report it once). */
  finished: boolean;
  /** The job's run id changed (it got its run folder): the runs list is stale. */
  runIdChanged: boolean;
  /** The job's summary arrived with this update (after its final state: the trainer says "done" first). */
  summarized: boolean;
}

export class JobTracker {
  private generation = 1;
  private readonly jobs = new Map<string, TrackedJob>();
  private order: string[] = [];

  constructor(
    readonly runIds: RunIds = new RunIds(),
    private readonly now: () => number = Date.now,
  ) {}

  private keyOf(id: number): string {
    return `${this.generation}:${id}`;
  }

  /** A job update from the server (or the answer to startTraining). */
  apply(update: JobUpdate, requestedBackend = 'auto'): Applied {
    const { job } = update;
    const key = this.keyOf(job.id);
    let tracked = this.jobs.get(key);
    const wasFinal = tracked ? isFinal(tracked.job.state) : false;
    const hadSummary = tracked?.job.summary !== undefined;
    const oldRunId = tracked?.runId;
    if (!tracked) {
      tracked = {
        key,
        job,
        runId: '',
        name: job.request.resumeRunDir ? basename(job.request.resumeRunDir) : configName(job.request.configPath),
        startedAt: null,
        progress: new Progress(),
        requestedBackend,
      };
      this.jobs.set(key, tracked);
      this.order.push(key);
    }
    // an update that arrives late (the answer to startTraining after a notification) must not go back
    if (!(isFinal(tracked.job.state) && !isFinal(job.state))) tracked.job = job;
    tracked.runId = job.runDir ? this.runIds.idOf(job.runDir) : this.runIds.provisional(job.id, this.generation);
    if (job.runDir) tracked.name = basename(job.runDir);
    if (tracked.startedAt === null && job.state !== 'queued') tracked.startedAt = this.now();
    tracked.progress.add(update.metrics);
    const finished = !wasFinal && isFinal(tracked.job.state);
    if (finished) tracked.finishedAt = this.now();
    return { tracked, finished, runIdChanged: oldRunId !== undefined && oldRunId !== tracked.runId, summarized: !hadSummary && tracked.job.summary !== undefined };
  }

  /**
   * The server exited: its jobs' trainers went with it. Every unfinished job is marked failed
   * with `reason` and returned; ids start again with the next server.
   */
  serverGone(reason: string): TrackedJob[] {
    const lost: TrackedJob[] = [];
    for (const tracked of this.jobs.values()) {
      if (isFinal(tracked.job.state)) continue;
      tracked.job = { ...tracked.job, state: 'failed', message: reason };
      tracked.finishedAt = this.now();
      lost.push(tracked);
    }
    this.generation++;
    return lost;
  }

  /**
   * A finished job's run folder was renamed (`to`) or deleted (undefined): its id is forgotten,
   * and a renamed run keeps its jobs under the new name.
   */
  runMoved(from: string, to: string | undefined): void {
    this.runIds.forget(from);
    if (to === undefined) return;
    for (const tracked of this.jobs.values()) {
      if (tracked.job.runDir !== from || !isFinal(tracked.job.state)) continue;
      tracked.job = { ...tracked.job, runDir: to };
      tracked.runId = this.runIds.idOf(to);
      tracked.name = basename(to);
    }
  }

  get(key: string): TrackedJob | undefined {
    return this.jobs.get(key);
  }

  /** Unfinished jobs, oldest first. */
  active(): TrackedJob[] {
    return this.order.map((key) => this.jobs.get(key)!).filter((t) => !isFinal(t.job.state));
  }

  /** Jobs waiting for the job slot, oldest first. */
  queued(): TrackedJob[] {
    return this.active().filter((t) => t.job.state === 'queued');
  }

  /** The job the status bar shows: the newest that is running, else queued, else the newest at all. */
  current(): TrackedJob | undefined {
    const all = this.order.map((key) => this.jobs.get(key)!).reverse();
    return (
      all.find((t) => t.job.state === 'training' || t.job.state === 'saving' || t.job.state === 'loading') ??
      all.find((t) => t.job.state === 'queued') ??
      all[0]
    );
  }

  /** The unfinished job whose run the webview calls `runId`. */
  byRunId(runId: string): TrackedJob | undefined {
    return this.order.map((key) => this.jobs.get(key)!).reverse().find((t) => t.runId === runId);
  }

  all(): TrackedJob[] {
    return this.order.map((key) => this.jobs.get(key)!);
  }
}

/** What the webview's Training tab shows for a job. */
export function runStateOf(tracked: TrackedJob): RunState {
  const { job } = tracked;
  const summary = job.summary;
  const state: RunState = {
    runId: tracked.runId,
    name: tracked.name,
    phase: phaseOf(job.state),
    step: job.step,
    total: job.totalSteps,
    backend: summary?.backend ?? job.backend ?? tracked.requestedBackend,
    device: summary?.device ?? job.device ?? '',
    startedAt: tracked.startedAt,
  };
  if (tracked.finishedAt !== undefined) state.finishedAt = tracked.finishedAt;
  if ((job.state === 'failed' || job.state === 'cancelled' || job.state === 'queued') && job.message) state.reason = job.message;
  return state;
}

/** The queued jobs as the panel lists them, each with what it waits for. */
export function queuedJobs(tracker: JobTracker): QueuedJob[] {
  const running = tracker.active().filter((t) => t.job.state !== 'queued');
  const waitsFor = running.length ? running.map((t) => t.name).join(', ') : 'the running job';
  return tracker.queued().map((t, i) => ({
    jobKey: t.key,
    name: t.name,
    reason: `waits for ${waitsFor}${i ? ` and ${i} queued before it` : ''}: one job trains at a time`,
  }));
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** How the item is coloured: failures stand out until the next job. */
  severity: 'normal' | 'warning' | 'error';
}

/**
 * The status bar item: step/total, loss and ETA while training; queued and failed visibly.
 * `queued`: how many jobs wait behind the one shown.
 */
export function statusOf(tracked: TrackedJob, queued = 0): StatusView {
  const { job, progress } = tracked;
  const waiting = queued > 0 && !isFinal(job.state) ? `${queued} queued` : '';
  const steps = job.totalSteps ? `${formatCount(job.step)}/${formatCount(job.totalSteps)}` : '';
  const loss = progress.lastLoss !== undefined ? `loss ${formatNumber(progress.lastLoss)}` : '';
  const eta = progress.eta(job.step, job.totalSteps);
  const parts = (...items: string[]) => items.filter(Boolean).join(' · ');
  const queuedTip = waiting ? `${queued} more job${queued === 1 ? '' : 's'} queued: each starts when the one before it ends.` : '';
  const tip = (first: string) => [first, job.message ?? '', queuedTip, 'Click to open the training panel.'].filter(Boolean).join('\n');
  switch (job.state) {
    case 'queued':
      return { text: `$(clock) ${parts('MoSLoRA: queued', waiting)}`, tooltip: tip(`${tracked.name}: waiting for the running job`), severity: 'warning' };
    case 'loading':
      return { text: `$(sync~spin) ${parts('MoSLoRA: loading', waiting)}`, tooltip: tip(`${tracked.name}: loading the model and data`), severity: 'normal' };
    case 'training':
      return {
        text: `$(sync~spin) ${parts(`MoSLoRA ${steps}`, loss, eta !== undefined ? `ETA ${formatDuration(eta)}` : '', waiting)}`,
        tooltip: tip(`${tracked.name}: training, step ${steps}`),
        severity: 'normal',
      };
    case 'saving':
      return { text: `$(sync~spin) ${parts('MoSLoRA: saving', waiting)}`, tooltip: tip(`${tracked.name}: saving the adapter`), severity: 'normal' };
    case 'done':
      return { text: `$(check) ${parts('MoSLoRA done', loss)}`, tooltip: tip(`${tracked.name}: done after ${steps} steps`), severity: 'normal' };
    case 'cancelled':
      return { text: `$(debug-stop) MoSLoRA stopped`, tooltip: tip(`${tracked.name}: stopped at step ${steps}`), severity: 'normal' };
    case 'failed':
      return { text: `$(error) MoSLoRA failed`, tooltip: tip(`${tracked.name}: failed at step ${steps}`), severity: 'error' };
  }
}
