// Training jobs, each in its own process: a native crash, an out-of-memory or a hung GPU call
// kills the job, never the language server, and the GPU memory is freed when it exits.
// One job runs at a time by default (one GPU); further jobs wait in a queue and say so.
import { fork, type ChildProcess } from 'node:child_process';
import type { JobInfo, JobState, JobUpdate } from '../../protocol/editor';
import type { MetricRecord, MixerSnapshot } from '../../protocol/records';
import type { FromTrainer, ToTrainer, TrainRequest } from '../../protocol/trainer';

export interface JobManagerOptions {
  /** The trainer entry point (dist/trainer.js). */
  trainerModule: string;
  execArgv?: string[];
  maxRunning?: number;
  /** Least time between two updates of one job carrying only metrics (state changes go at once). */
  throttleMs?: number;
  /** After a cancel, how long a trainer may take to save its checkpoint before it is killed. */
  cancelGraceMs?: number;
  onUpdate: (update: JobUpdate) => void;
  /** The server log: where a failed trainer's stack trace goes (its job shows the message alone). */
  log?: (line: string) => void;
}

const KEPT_LINES = 40;
// Node's native stack trace after an abort: addresses, not the cause the user needs to see.
const NATIVE_FRAME = /^\s*(\d+: 0x[0-9a-f]+|----- Native stack trace -----)/;
const FINAL: readonly JobState[] = ['done', 'cancelled', 'failed'];

interface Running {
  child: ChildProcess;
  pending: { metrics: MetricRecord[]; mixers: MixerSnapshot[] };
  timer: NodeJS.Timeout | null;
  lastSent: number;
  killTimer: NodeJS.Timeout | null;
}

export class JobManager {
  private nextId = 1;
  private readonly jobs = new Map<number, JobInfo>();
  private readonly queue: number[] = [];
  private readonly running = new Map<number, Running>();

  constructor(private readonly options: JobManagerOptions) {}

  start(request: TrainRequest): JobInfo {
    const job: JobInfo = { id: this.nextId++, request, state: 'queued', step: 0, totalSteps: 0, lastOutput: [] };
    this.jobs.set(job.id, job);
    this.queue.push(job.id);
    this.pump();
    if (job.state === 'queued') {
      job.message = `queued: ${this.running.size} job(s) running, ${this.queue.indexOf(job.id)} ahead; one GPU job runs at a time`;
      this.emit(job);
    }
    return job;
  }

  cancel(id: number): JobInfo {
    const job = this.jobs.get(id);
    if (!job) throw new Error(`no job ${id}`);
    const queued = this.queue.indexOf(id);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.finish(job, 'cancelled', 'cancelled before it started');
      return job;
    }
    const run = this.running.get(id);
    if (run && !run.killTimer) {
      run.child.send({ type: 'cancel' } satisfies ToTrainer);
      run.killTimer = setTimeout(() => run.child.kill('SIGKILL'), this.options.cancelGraceMs ?? 120_000);
    }
    return job;
  }

  list(): JobInfo[] {
    return [...this.jobs.values()];
  }

  get(id: number): JobInfo | undefined {
    return this.jobs.get(id);
  }

  /**
   * The server is shutting down: queued jobs are dropped, running ones are asked to stop (they
   * save a checkpoint) and killed if they have not exited within `graceMs`.
   */
  async shutdown(graceMs: number): Promise<void> {
    for (const id of [...this.queue]) this.cancel(id);
    const exits = [...this.running.values()].map(
      (run) => new Promise<void>((resolve) => (run.child.exitCode !== null ? resolve() : run.child.once('exit', () => resolve()))),
    );
    for (const id of [...this.running.keys()]) this.cancel(id);
    const timer = setTimeout(() => {
      for (const run of this.running.values()) run.child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }

  private pump(): void {
    while (this.running.size < (this.options.maxRunning ?? 1) && this.queue.length) {
      this.launch(this.jobs.get(this.queue.shift()!)!);
    }
  }

  private launch(job: JobInfo): void {
    const child = fork(this.options.trainerModule, [], { silent: true, execArgv: this.options.execArgv ?? [], serialization: 'advanced' });
    const run: Running = { child, pending: { metrics: [], mixers: [] }, timer: null, lastSent: 0, killTimer: null };
    this.running.set(job.id, run);
    if (child.pid !== undefined) job.pid = child.pid;
    job.state = 'loading';
    delete job.message;
    this.emit(job);
    const keep = (chunk: Buffer) => {
      job.lastOutput.push(...chunk.toString().split('\n').filter((line) => line.trim()));
      job.lastOutput.splice(0, Math.max(0, job.lastOutput.length - KEPT_LINES));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (message: FromTrainer) => this.receive(job, run, message));
    child.on('error', (error) => this.finish(job, 'failed', `the trainer could not start: ${error.message}`));
    child.on('exit', (code, signal) => {
      const cancelled = run.killTimer !== null;
      if (run.killTimer) clearTimeout(run.killTimer);
      this.flush(job, run);
      this.running.delete(job.id);
      delete job.pid;
      if (cancelled && !FINAL.includes(job.state)) {
        this.finish(job, 'cancelled', `cancelled: the trainer did not stop in time and was killed at step ${job.step}; resume starts from its last checkpoint`);
      } else if (!FINAL.includes(job.state)) {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const cause = job.lastOutput.filter((line) => !NATIVE_FRAME.test(line)).slice(-10);
        const output = cause.length ? `; its last output:\n${cause.join('\n')}` : '';
        this.finish(job, 'failed', `the trainer ${how} at step ${job.step}${output}`);
      }
      this.pump();
    });
    child.send({ type: 'start', request: job.request } satisfies ToTrainer);
  }

  private receive(job: JobInfo, run: Running, message: FromTrainer): void {
    if (message.type === 'event') {
      const event = message.event;
      if (event.type === 'state') {
        Object.assign(job, { state: event.state, runDir: event.runDir, step: event.step, totalSteps: event.totalSteps });
        if (event.message) job.message = event.message;
        if (event.backend) job.backend = event.backend;
        if (event.device) job.device = event.device;
        this.flush(job, run);
      } else if (event.type === 'metrics') {
        run.pending.metrics.push(event.record);
        if (event.record.kind === 'train') job.step = event.record.step;
        this.schedule(job, run);
      } else {
        run.pending.mixers.push(...event.snapshots);
        this.schedule(job, run);
      }
    } else if (message.type === 'result') {
      job.summary = message.summary;
      this.flush(job, run);
      this.finish(job, message.summary.state, message.summary.reason);
    } else {
      if (message.stack) this.options.log?.(`job ${job.id} failed: ${message.stack}`);
      this.flush(job, run);
      this.finish(job, 'failed', message.message);
    }
  }

  private schedule(job: JobInfo, run: Running): void {
    if (run.timer) return;
    const wait = Math.max(0, run.lastSent + (this.options.throttleMs ?? 200) - Date.now());
    run.timer = setTimeout(() => this.flush(job, run), wait);
  }

  private flush(job: JobInfo, run: Running): void {
    if (run.timer) clearTimeout(run.timer);
    run.timer = null;
    run.lastSent = Date.now();
    const { metrics, mixers } = run.pending;
    run.pending = { metrics: [], mixers: [] };
    this.options.onUpdate({ job: { ...job }, metrics, mixers });
  }

  private finish(job: JobInfo, state: 'done' | 'cancelled' | 'failed', message?: string): void {
    if (FINAL.includes(job.state)) return;
    job.state = state;
    if (message) job.message = message;
    this.emit(job);
  }

  private emit(job: JobInfo): void {
    this.options.onUpdate({ job: { ...job }, metrics: [], mixers: [] });
  }
}
