// The editor's A/B test: `moslora ab CONFIG --methods … --seeds N --json --progress-json` as a
// child of the server, its progress lines forwarded as they come. Cancelling sends SIGINT, as
// Ctrl-C in a terminal: every run saves a checkpoint and the same request again continues them.
// The run listing also looks inside the A/B folders (ab-<name>/ab.json) of each runs folder.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CancellationToken } from 'vscode-languageserver';
import type { AbProgress, AbTestParams, AbTestResult, RunFolder } from '../../protocol/editor';
import { abFolderName, MANIFEST_FILE, parseManifest } from '../ab/layout';
import { parseProgressLine } from '../ab/progress';
import { listRuns } from '../engine/runs';
import { FileReadError, readTextFile } from '../formats/files';
import { runCliJson } from './cli-task';

/** Runs still training get this long after SIGINT to save their checkpoints before the CLI is killed. */
const STOP_GRACE_MS = 120_000;

/** The CLI's arguments for an A/B test of the config at `configPath`. */
export function abCliArgs(configPath: string, params: Pick<AbTestParams, 'methods' | 'seeds' | 'runsDir'>): string[] {
  return ['ab', configPath, '--methods', params.methods.join(','), '--seeds', String(params.seeds), ...(params.runsDir ? ['--runs-dir', params.runsDir] : []), '--json', '--progress-json'];
}

export interface AbTaskOptions {
  cli: string;
  token?: CancellationToken;
  onProgress?: (progress: AbProgress) => void;
  /** Every other stderr line, for the server log. */
  onLog?: (line: string) => void;
}

export async function runAbTask(configPath: string, params: AbTestParams, options: AbTaskOptions): Promise<AbTestResult> {
  const result = await runCliJson<AbTestResult & { report?: unknown }>(abCliArgs(configPath, params), {
    cli: options.cli,
    ...(options.token ? { token: options.token } : {}),
    cancelSignal: 'SIGINT',
    killGraceMs: STOP_GRACE_MS,
    onStderr: (line) => {
      const progress = parseProgressLine(line);
      if (progress) options.onProgress?.(progress);
      else options.onLog?.(line);
    },
  });
  const { abDir, reportFile, figures, trained, unfinished, cancelled, sentences } = result;
  return { abDir, reportFile, figures, trained, unfinished, cancelled, sentences };
}

/** An A/B's ab.json lists a few hundred runs at the most. */
const MAX_MANIFEST_BYTES = 4 * 1024 ** 2;

/**
 * The runs under `runsDir` (listRuns), and those of each A/B folder in it, each tagged with its
 * A/B's name, method and seed from the manifest. An A/B whose ab.json does not parse still lists
 * its runs, untagged, and `onWarning` says why.
 */
export async function listRunsWithAb(runsDir: string, onWarning: (message: string) => void = () => {}): Promise<RunFolder[]> {
  const runs = await listRuns(runsDir);
  const names = await readdir(runsDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(abFolderName('')))) {
    const abDir = join(runsDir, name);
    const manifestFile = join(abDir, MANIFEST_FILE);
    const text = await readTextFile(manifestFile, 'an A/B manifest', MAX_MANIFEST_BYTES).catch((error: unknown) => {
      // an ab-* folder without ab.json is not an A/B; any other failure is said
      if (!(error instanceof FileReadError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')) onWarning(`${(error as Error).message}: its runs are not listed`);
      return null;
    });
    if (text === null) continue;
    const abRuns = await listRuns(abDir);
    try {
      const manifest = parseManifest(text, join(abDir, MANIFEST_FILE));
      const byDir = new Map(manifest.runs.map((run) => [join(abDir, run.dir), run]));
      for (const run of abRuns) {
        const entry = byDir.get(run.runDir);
        if (entry) run.ab = { name: manifest.name, method: entry.method, seed: entry.seed };
      }
    } catch (error) {
      onWarning(`${(error as Error).message}: its runs are listed without their A/B`);
    }
    runs.push(...abRuns);
  }
  return runs;
}
