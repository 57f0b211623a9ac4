// An A/B's progress as the editor shows it (runs ended of all, the current run's step), from the
// events runAb emits. `moslora ab --progress-json` writes each change as one line on stderr,
// PROGRESS_PREFIX then the JSON, and the language server reads them back (server/tasks/ab.ts).
import type { AbProgress } from '../../protocol/editor';
import type { AbEvent } from './run';

export const PROGRESS_PREFIX = 'moslora-ab-progress ';

/** A run that ends so is not trained again by the same A/B; a cancelled one is (it resumes). */
const ENDED = new Set(['done', 'failed']);

/** A function from each event to the progress after it, or null when the event changes nothing shown. */
export function abProgressTracker(): (event: AbEvent) => AbProgress | null {
  let total = 0;
  let done = 0;
  const ended = new Set<string>();
  let last = '';
  return (event) => {
    if (event.type === 'stopping') return null;
    let progress: AbProgress;
    if (event.type === 'plan') {
      total = event.runs.length;
      // runs that finished or failed earlier are not trained again: they count as ended
      done = event.runs.filter((run) => run.action === 'done' || run.action === 'failed').length;
      progress = { done, total };
    } else {
      const { run, update } = event;
      if (ENDED.has(update.job.state) && !ended.has(run.runDir)) {
        ended.add(run.runDir);
        done++;
      }
      progress = { done, total, current: { method: run.method, seed: run.seed, step: update.job.step, totalSteps: update.job.totalSteps } };
    }
    const key = JSON.stringify(progress);
    if (key === last) return null;
    last = key;
    return progress;
  };
}

/** The progress a stderr line carries, or null for any other line. */
export function parseProgressLine(line: string): AbProgress | null {
  if (!line.startsWith(PROGRESS_PREFIX)) return null;
  try {
    const value = JSON.parse(line.slice(PROGRESS_PREFIX.length)) as Partial<AbProgress>;
    return typeof value.done === 'number' && typeof value.total === 'number' ? (value as AbProgress) : null;
  } catch {
    return null;
  }
}
