// Everything the panel knows about runs, kept whole (every record, every snapshot): charts thin
// it for display, exports and smoothing use all of it.
import type { Hyperparameter, QueuedJob, RunListing, RunState } from '../../protocol/webview';
import type { MetricRecord, MixerSnapshot } from '../../protocol/records';

/** One metric of one kind over steps, NaN where a record lacked it or it was not finite. */
export class Column {
  readonly steps: number[] = [];
  /** Seconds since the run started (the record's `wall_s`), NaN where not logged. */
  readonly walls: number[] = [];
  readonly values: number[] = [];
  /** Bumped when earlier points are replaced (a resumed run logs its steps again). */
  version = 0;

  push(step: number, wall: number, value: number): void {
    const n = this.steps.length;
    if (n && step <= this.steps[n - 1]!) {
      // A resume logs from its checkpoint again: the new points replace the old from `step` on.
      let cut = n;
      while (cut > 0 && this.steps[cut - 1]! >= step) cut--;
      this.steps.length = this.walls.length = this.values.length = cut;
      this.version++;
    }
    this.steps.push(step);
    this.walls.push(wall);
    this.values.push(value);
  }

  get length(): number {
    return this.steps.length;
  }
}

// Record fields that are not curves: the epoch is progress, shown in the panel's header.
const NOT_METRICS = new Set(['step', 'kind', 'wall_s', 'epoch']);

export class RunData {
  name: string;
  method: string | undefined;
  state: RunState | undefined;
  /** The last logged train loss as summary.json has it (raw); a live run's comes from its records. */
  finalLoss: number | undefined;
  /** A stopped or failed run with a checkpoint, not training: Resume applies. */
  resumable = false;
  /** The run's config.yaml as dotted keys, when the extension could read it. */
  hyperparameters: Record<string, Hyperparameter> | undefined;
  /** The A/B it belongs to, when it is one of an A/B's runs. */
  ab: RunListing['ab'];
  readonly records: MetricRecord[] = [];
  /** `train/loss`, `eval/accuracy`, … */
  readonly columns = new Map<string, Column>();
  /** Per module, ascending by step. */
  readonly mixers = new Map<string, MixerSnapshot[]>();
  /** Bumped on every change, so views redraw only what changed. */
  version = 0;
  /** True once the extension has sent (or we restored) this run's metrics. */
  loaded = false;

  constructor(readonly runId: string) {
    this.name = runId;
  }

  /** The epoch (counted from 0) of the newest record that names one. */
  epoch(): number | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const epoch = this.records[i]!.epoch;
      if (typeof epoch === 'number') return epoch;
    }
    return undefined;
  }

  column(kind: 'train' | 'eval', metric: string): Column | undefined {
    return this.columns.get(`${kind}/${metric}`);
  }

  addRecords(records: readonly MetricRecord[], replace = false): void {
    if (replace) {
      this.records.length = 0;
      this.columns.clear();
    }
    for (const record of records) {
      const last = this.lastStep(record.kind);
      if (last !== undefined && record.step <= last) this.dropFrom(record.kind, record.step);
      this.records.push(record);
      const wall = typeof record.wall_s === 'number' ? record.wall_s : Number.NaN;
      for (const key in record) {
        if (NOT_METRICS.has(key)) continue;
        const value = record[key];
        if (typeof value === 'string' || value === undefined) continue;
        const id = `${record.kind}/${key}`;
        let column = this.columns.get(id);
        if (!column) this.columns.set(id, (column = new Column()));
        column.push(record.step, wall, value === null ? Number.NaN : value);
      }
    }
    this.loaded = true;
    this.version++;
  }

  /** Drops `kind` records at or after `step` (records arrive in step order, so only a tail). */
  private dropFrom(kind: 'train' | 'eval', step: number): void {
    let cut = this.records.length;
    while (cut > 0 && this.records[cut - 1]!.step >= step) cut--;
    const tail = this.records.splice(cut).filter((r) => r.kind !== kind);
    this.records.push(...tail);
  }

  private lastStep(kind: 'train' | 'eval'): number | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) if (this.records[i]!.kind === kind) return this.records[i]!.step;
    return undefined;
  }

  addMixers(snapshots: readonly MixerSnapshot[], replace = false): void {
    if (replace) this.mixers.clear();
    for (const snapshot of snapshots) {
      let list = this.mixers.get(snapshot.module);
      if (!list) this.mixers.set(snapshot.module, (list = []));
      while (list.length && list[list.length - 1]!.step >= snapshot.step) list.pop();
      list.push(snapshot);
    }
    this.version++;
  }

  /** Every step that has a snapshot of some module, ascending. */
  mixerSteps(): number[] {
    const steps = new Set<number>();
    for (const list of this.mixers.values()) for (const s of list) steps.add(s.step);
    return [...steps].sort((a, b) => a - b);
  }

  /** The last logged train loss (raw): what the status bar and the notifications show. */
  lastLoss(): number | undefined {
    return this.last('train', 'loss') ?? this.finalLoss;
  }

  /** The last value of a metric, or undefined. */
  last(kind: 'train' | 'eval', metric: string): number | undefined {
    const column = this.column(kind, metric);
    if (!column) return undefined;
    for (let i = column.length - 1; i >= 0; i--) if (Number.isFinite(column.values[i])) return column.values[i];
    return undefined;
  }

  /** The lowest (or highest) value of a metric, or undefined. */
  best(kind: 'train' | 'eval', metric: string, lowest: boolean): number | undefined {
    const column = this.column(kind, metric);
    let best: number | undefined;
    for (const v of column?.values ?? []) {
      if (Number.isFinite(v) && (best === undefined || (lowest ? v < best : v > best))) best = v;
    }
    return best;
  }

  /** Seconds from start to the last record (or to now, while running). */
  elapsedSeconds(now: number): number | undefined {
    const state = this.state;
    if (state?.startedAt != null) {
      const active = state.phase === 'loading' || state.phase === 'training' || state.phase === 'saving';
      const end = active ? now : (state.finishedAt ?? undefined);
      if (end !== undefined) return Math.max(0, (end - state.startedAt) / 1000);
    }
    for (let i = this.records.length - 1; i >= 0; i--) {
      const wall = this.records[i]!.wall_s;
      if (typeof wall === 'number') return wall;
    }
    return undefined;
  }

  /** Steps per second over the last `window` train records that carry wall time. */
  stepsPerSecond(window = 50): number | undefined {
    const column = this.column('train', 'loss') ?? [...this.columns.values()][0];
    if (!column) return undefined;
    let end = column.length - 1;
    while (end >= 0 && !Number.isFinite(column.walls[end])) end--;
    if (end < 1) return undefined;
    let start = Math.max(0, end - window);
    while (start < end && !Number.isFinite(column.walls[start])) start++;
    const seconds = column.walls[end]! - column.walls[start]!;
    const steps = column.steps[end]! - column.steps[start]!;
    return seconds > 0 && steps > 0 ? steps / seconds : undefined;
  }
}

/** Runs by id, in the order the extension listed them. */
export class Store {
  readonly runs = new Map<string, RunData>();
  /** The run the Training and Mixers tabs show (the run pickers' choice). */
  currentRunId: string | undefined;
  /** Run ids as the extension listed them, newest first. */
  listed: string[] = [];
  /** Jobs waiting for the running one, oldest first. */
  queue: QueuedJob[] = [];
  /** Runs whose records the extension sent whole in this page's life (a restored page's may be stale). */
  private readonly synced = new Set<string>();
  private readonly requested = new Set<string>();
  /** Runs a restored page brought back from its saved state, not yet confirmed by the extension. */
  private unconfirmed = new Set<string>();

  run(runId: string): RunData {
    let run = this.runs.get(runId);
    if (!run) this.runs.set(runId, (run = new RunData(runId)));
    return run;
  }

  get current(): RunData | undefined {
    return this.currentRunId === undefined ? undefined : this.runs.get(this.currentRunId);
  }

  /** A run's state changed. It becomes the one shown only when none is (the extension says `focus` otherwise). */
  setState(state: RunState): void {
    const run = this.run(state.runId);
    run.state = state;
    run.name = state.name;
    run.version++;
    this.unconfirmed.delete(state.runId);
    this.currentRunId ??= state.runId;
  }

  /** The runs held now came from a restored page's saved state: the next listing confirms or drops each. */
  markRestored(): void {
    this.unconfirmed = new Set(this.runs.keys());
  }

  /** The extension's list of runs, newest first. */
  setListing(listings: readonly RunListing[]): void {
    this.listed = listings.map((l) => l.runId);
    // a restored run the extension no longer lists was deleted or renamed while the page was away
    const gone = [...this.unconfirmed].filter((id) => !this.listed.includes(id));
    this.unconfirmed.clear();
    for (const id of gone) this.remove(id);
    for (const listing of listings) {
      const run = this.run(listing.runId);
      run.name = listing.name;
      run.method = listing.method;
      run.finalLoss = listing.finalLoss;
      run.resumable = listing.resumable === true;
      run.hyperparameters = listing.hyperparameters;
      run.ab = listing.ab;
      if (listing.state) run.state = listing.state;
      if (listing.metrics) {
        run.addRecords(listing.metrics, true);
        this.synced.add(listing.runId);
      }
      run.version++;
    }
    this.currentRunId ??= this.listed[0];
  }

  /** Records of a run as the extension sent them; `replace`: the whole run, from disk. */
  addRecords(runId: string, records: readonly MetricRecord[], replace = false): void {
    this.run(runId).addRecords(records, replace);
    if (replace) this.synced.add(runId);
  }

  /**
   * True once per page for a run whose records have not come whole from the extension: the
   * caller asks for them (requestRun).
   */
  needs(runId: string): boolean {
    if (this.synced.has(runId) || this.requested.has(runId)) return false;
    this.requested.add(runId);
    return true;
  }

  /** A run was deleted or renamed. */
  remove(runId: string): void {
    this.runs.delete(runId);
    this.listed = this.listed.filter((id) => id !== runId);
    this.synced.delete(runId);
    this.requested.delete(runId);
    if (this.currentRunId === runId) this.currentRunId = this.listed[0];
  }

  /** Runs for the Compare tab: the listed ones, then any other we hold (the live run). */
  comparable(): RunData[] {
    const ids = [...this.listed, ...[...this.runs.keys()].filter((id) => !this.listed.includes(id))];
    return ids.map((id) => this.runs.get(id)!).filter(Boolean);
  }

  /** Runs for the run pickers, newest first: a live run the list does not have yet, then the list. */
  newestFirst(): RunData[] {
    const unlisted = [...this.runs.keys()].filter((id) => !this.listed.includes(id)).reverse();
    return [...unlisted, ...this.listed].map((id) => this.runs.get(id)!).filter(Boolean);
  }
}
