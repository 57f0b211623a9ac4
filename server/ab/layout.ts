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
import { BACKENDS } from '../../protocol/backends';
import { ADAPTER_METHODS } from '../../protocol/methods';
import type { AbManifest } from '../../protocol/records';

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
    dir: z.string().min(1),
  })
  .strict();

/** ab.json as protocol/records.ts declares it, with the bounds each field must keep. */
export const manifestSchema = z
  .object({
    version: z.literal(MANIFEST_VERSION),
    name: z.string().regex(AB_NAME),
    config: z.string().min(1),
    configSha256: z.string().regex(/^[0-9a-f]{64}$/),
    methods: z.array(z.enum(ADAPTER_METHODS)).min(2),
    seeds: z.array(z.number().int().min(0)).min(1),
    backend: z.enum(BACKENDS),
    schedule: z.object({ atOnce: z.number().int().min(1), coresPerRun: z.number().int().min(1) }).strict(),
    runs: z.array(runEntry),
    report: z.string().min(1),
    figures: z.array(z.string().min(1)),
  })
  .strict() satisfies z.ZodType<AbManifest>;

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
