// Run ids as the webview knows runs: a run folder's name (stable across sessions, so a restored
// panel and the runs list agree), made unique when two runs folders hold the same name. The
// webview only ever sends these ids back; the extension maps them to folders itself and ignores
// ids it never handed out.
import { basename } from 'node:path';

export class RunIds {
  private readonly dirs = new Map<string, string>(); // run id → run folder
  private readonly ids = new Map<string, string>(); // run folder → run id

  /** The id of a run folder (absolute path). */
  idOf(runDir: string): string {
    const known = this.ids.get(runDir);
    if (known) return known;
    const base = basename(runDir) || 'run';
    let id = base;
    for (let n = 2; this.dirs.has(id); n++) id = `${base}~${n}`;
    this.dirs.set(id, runDir);
    this.ids.set(runDir, id);
    return id;
  }

  /** A job that has no run folder yet (queued, loading). */
  provisional(jobId: number, generation: number): string {
    return generation === 1 ? `job-${jobId}` : `job-${generation}.${jobId}`;
  }

  /** The folder of a run id this registry handed out; undefined for anything else. */
  dirOf(runId: string): string | undefined {
    return this.dirs.get(runId);
  }

  /** A run folder that was renamed or deleted: its id means nothing any more (and may be reused). */
  forget(runDir: string): void {
    const id = this.ids.get(runDir);
    if (id === undefined) return;
    this.ids.delete(runDir);
    this.dirs.delete(id);
  }
}
