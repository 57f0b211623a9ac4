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

export interface MergeResult {
  outDir: string;
  mergedModules: number;
  /** Largest |logit difference| between base+adapter and the merged model on a probe input. */
  maxAbsLogitDiff: number;
}

export interface ExportResult {
  outDir: string;
  modules: number;
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

/** The `--json` result of each CLI command the server runs. */
export interface CliResults {
  backends: EnvironmentReport;
  merge: MergeResult;
  export: ExportResult;
  combine: CombineResult;
  generate: GenerateResult;
}
export type CliCommand = keyof CliResults;
