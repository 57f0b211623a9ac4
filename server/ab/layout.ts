// An A/B on disk, beside the config's other runs:
//
//   <runs_dir>/ab-<name>/ab.json                the manifest (AbManifest): the config, methods,
//                                               seeds, the backend, a run folder per method and
//                                               seed, the report's files
//                        <method>-seed<seed>/   one run folder each, as server/engine/runs.ts
//                                               lays it out (listRuns on the A/B's folder lists them)
//                        report.md              the report; `moslora ab --report-only` rebuilds it
//                        figures/*.svg          its figures
//
// The A/B is the manifest plus whatever its run folders hold: a second `moslora ab` with the same
// name trains only the runs that have not finished, and the report is always recomputed from the
// runs' metrics.jsonl and summary.json.
import { z } from 'zod';
import { ADAPTER_METHODS } from '../../kernels/adapter';
import { BACKENDS } from '../../kernels/backend-names';

export const MANIFEST_FILE = 'ab.json';
export const REPORT_FILE = 'report.md';
export const FIGURES_DIR = 'figures';
export const MANIFEST_VERSION = 1;

/** letters, digits, ".", "_" and "-", as output.run_name */
export const AB_NAME = /^[A-Za-z0-9._-]+$/;

export function abFolderName(name: string): string {
  return `ab-${name}`;
}

export function runFolderName(method: string, seed: number): string {
  return `${method}-seed${seed}`;
}

const runEntry = z
  .object({
    method: z.enum(ADAPTER_METHODS),
    seed: z.number().int().min(0),
    /** The run folder, relative to the A/B's folder. */
    dir: z.string().min(1),
  })
  .strict();

export const manifestSchema = z
  .object({
    version: z.literal(MANIFEST_VERSION),
    name: z.string().regex(AB_NAME),
    /** The config every run trains, absolute. */
    config: z.string().min(1),
    /** SHA-256 of the config file's text when the A/B started: runs of another text do not mix. */
    configSha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** The first is the baseline every other method is compared with. */
    methods: z.array(z.enum(ADAPTER_METHODS)).min(2),
    seeds: z.array(z.number().int().min(0)).min(1),
    /** The backend every run trains on (the one `auto` picked when the A/B started). */
    backend: z.enum(BACKENDS),
    /** How the last `moslora ab` that trained shared the cores: runs at once, and the cores of each. */
    schedule: z.object({ atOnce: z.number().int().min(1), coresPerRun: z.number().int().min(1) }).strict(),
    runs: z.array(runEntry),
    /** Relative to the A/B's folder. */
    report: z.string().min(1),
    figures: z.array(z.string().min(1)),
  })
  .strict();

export type AbManifest = z.output<typeof manifestSchema>;
export type AbRunEntry = z.output<typeof runEntry>;

/** The manifest in `text` (from `file`); throws naming the file and each bad key. */
export function parseManifest(text: string, file: string): AbManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'the manifest'}: ${issue.message}`);
    throw new Error(`${file}: not an A/B manifest of version ${MANIFEST_VERSION}: ${problems.join('; ')}`);
  }
  return parsed.data;
}
