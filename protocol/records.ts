// The run records on disk, as server/engine/runs.ts writes them into a run folder and the
// server, the extension and the panel read them back:
//   metrics.jsonl  one MetricRecord a line
//   mixers.jsonl   one MixerSnapshot a line
//   summary.json   one TrainSummary, once the run has ended
// and an A/B's manifest, ab.json (server/ab/layout.ts writes and checks it).
import type { BackendName } from './backends';
import type { AdapterMethod } from './methods';

/**
 * One logged step. Known metrics: train `loss`, `lr`, `grad_norm`, `tokens_per_s`; eval
 * `eval_loss`, `accuracy`; both `wall_s` (seconds since the run started). A metric that was
 * NaN or ±Infinity arrives as `null` (that is what JSON.stringify writes for them).
 */
export interface MetricRecord {
  step: number;
  kind: 'train' | 'eval';
  [metric: string]: number | string | null;
}

/**
 * One r×r mixer M of one adapted module at one step. A value that diverged (NaN, ±Infinity)
 * arrives as `null`, as JSON writes it; the heatmap draws it as "not finite".
 */
export interface MixerSnapshot {
  step: number;
  /** The checkpoint's own module name, e.g. `model.layers.3.self_attn.q_proj`. */
  module: string;
  r: number;
  /** Row-major r×r values of M (the product for a linchain). */
  values: (number | null)[];
  /** ‖M − I‖_F. */
  distanceFromIdentity: number | null;
  /** Singular values of M, largest first. */
  singularValues: (number | null)[];
}

/** How a run ended: finished its steps, stopped by the user, or failed. */
export type RunOutcome = 'done' | 'cancelled' | 'failed';

/** What ran, on which backend, how long, and its final metrics (summary.json). */
export interface TrainSummary {
  runDir: string;
  state: RunOutcome;
  reason?: string;
  backend: string;
  device: string;
  /** Threads that shared each micro-batch (training.workers). */
  threads: number;
  method: string;
  /** DoRA on top of the method (use_dora); absent in summaries from before DoRA. */
  useDora?: boolean;
  steps: number;
  totalSteps: number;
  trainableParameters: number;
  baseParameters: number;
  finalLoss: number | null;
  evalLoss: number | null;
  accuracy: number | null;
  medianStepSeconds: number | null;
  wallSeconds: number;
}

/** One run of an A/B: a method and a seed, in its own run folder (relative to the A/B's folder). */
export interface AbRunEntry {
  method: AdapterMethod;
  seed: number;
  dir: string;
}

/** An A/B's manifest, <runs_dir>/ab-<name>/ab.json: one config trained once per method and seed. */
export interface AbManifest {
  version: 1;
  name: string;
  /** The config every run trains, absolute. */
  config: string;
  /** SHA-256 of the config file's text when the A/B started: runs of another text do not mix. */
  configSha256: string;
  /** The first is the baseline every other method is compared with. */
  methods: AdapterMethod[];
  seeds: number[];
  /** The backend every run trains on (the one `auto` picked when the A/B started). */
  backend: BackendName;
  /** How the last `moslora ab` that trained shared the cores: runs at once, and the cores of each. */
  schedule: { atOnce: number; coresPerRun: number };
  runs: AbRunEntry[];
  /** The report, relative to the A/B's folder. */
  report: string;
  figures: string[];
}
