// What `moslora <command> --json` prints, as ONE JSON object on its last stdout line: the
// results the language server reads back from the CLI children it runs (server/tasks/cli-task.ts)
// for the editor's long operations. The CLI writes them with these types; the server reads them
// with the same ones.
import type { BackendChoice, BackendName } from './backends';

export interface EnvironmentReport {
  /** What `--backend auto` picks on this machine, and why it skipped the others. */
  auto: BackendChoice;
  backends: readonly BackendName[];
  node: string;
  platform: string;
}

/**
 * What the frozen base's stored precision while the adapter trained (torch_dtype, load_in_8bit,
 * load_in_4bit) cost, measured on the merge check's fixed batch: the logits of the base at that
 * precision + the adapter against those of the base at float32 + the adapter. A merge writes the
 * adapter into the base as stored, so this is what the merged model differs by from the model the
 * adapter was trained with.
 */
export type QuantisationCost =
  | {
      status: 'measured';
      /** The base's stored formats while the adapter trained, in words: 'nf4 (groups of 64), embedding and lm_head float32'. */
      basePrecision: string;
      /** Largest |logit difference|. */
      maxAbsLogitDiff: number;
      /** Mean |logit difference| over the batch's positions and the vocabulary. */
      meanAbsLogitDiff: number;
      /** maxAbsLogitDiff over the largest |logit| of the float32 base + adapter. */
      relativeLogitDiff: number;
    }
  | {
      /** not-quantised: the run held every weight the model reads as stored, or the adapter records no precision (read as float32); not-measured: the base model cannot be read, or the adapter cannot run on it. */
      status: 'not-quantised' | 'not-measured';
      basePrecision: string;
      /** Why, in words. */
      reason: string;
    };

export interface MergeResult {
  outDir: string;
  mergedModules: number;
  /** Largest |logit difference| between base+adapter and the merged model on a probe input. */
  maxAbsLogitDiff: number;
  quantisation: QuantisationCost;
}

export interface ExportResult {
  outDir: string;
  modules: number;
  quantisation: QuantisationCost;
}

export interface CombineResult {
  outDir: string;
  modules: number;
  rank: number;
  /** The largest ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F over the modules: 0 for cat. */
  relativeError: number;
}

export interface GenerateResult {
  text: string;
  /** How many tokens were generated (the prompt not counted). */
  tokens: number;
  /** The generated token ids, in order. */
  tokenIds: number[];
  stoppedBy: 'eos' | 'max_new_tokens';
}

/** A QuantisationCost in one line, for the CLI, the demo and the editor's messages. */
export function describeQuantisationCost(cost: QuantisationCost): string {
  if (cost.status !== 'measured') return `quantisation cost: ${cost.status === 'not-quantised' ? 'none' : 'not measured'} (${cost.reason})`;
  const percent = cost.relativeLogitDiff * 100;
  return (
    `quantisation cost, base + adapter at ${cost.basePrecision} vs at float32: max |Δlogit| ${cost.maxAbsLogitDiff.toExponential(2)} ` +
    `(${percent < 0.01 ? percent.toExponential(1) : percent.toFixed(2)}% of the largest logit), mean |Δlogit| ${cost.meanAbsLogitDiff.toExponential(2)}`
  );
}

/** The `--json` result of each CLI command the server runs. */
export interface CliResults {
  backends: EnvironmentReport;
  merge: MergeResult;
  export: ExportResult;
  combine: CombineResult;
  generate: GenerateResult;
}
export type CliCommand = keyof CliResults;
