// Where the language server may read and write for a request: inside the workspace's folders
// (from initialize, kept current by workspace/didChangeWorkspaceFolders), the editor's runs
// folder (moslora.runsDirectory), and the runs folders of the jobs this server started. A path a
// request names is resolved through its symbolic links first, so a link in the workspace that
// points elsewhere counts as elsewhere.
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';

export class PathRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathRefused';
  }
}

/** The path with its longest existing prefix resolved through links; the rest (to be created) as written. */
async function realPathOf(path: string): Promise<string> {
  const missing: string[] = [];
  let current = resolve(path);
  for (;;) {
    try {
      return join(await realpath(current), ...missing);
    } catch {
      const parent = dirname(current);
      if (parent === current) return resolve(path);
      missing.unshift(basename(current));
      current = parent;
    }
  }
}

function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

export class WorkspaceRoots {
  private folders: string[] = [];
  private runsDirectory: string | null = null;
  private readonly jobRuns = new Set<string>();

  /** The workspace's folders, absolute (initialize's workspaceFolders, else its rootUri). */
  setFolders(folders: readonly string[]): void {
    this.folders = folders.filter((folder) => isAbsolute(folder));
  }

  changeFolders(added: readonly string[], removed: readonly string[]): void {
    this.setFolders([...this.folders.filter((folder) => !removed.includes(folder)), ...added]);
  }

  /** The editor's moslora.runsDirectory (absolute), or null when unset. */
  setRunsDirectory(dir: string | null): void {
    this.runsDirectory = dir !== null && isAbsolute(dir) ? dir : null;
  }

  /** A runs folder a job of this server writes (its config's output.runs_dir). */
  addJobRuns(dir: string): void {
    if (isAbsolute(dir)) this.jobRuns.add(dir);
  }

  get roots(): string[] {
    return [...this.folders, ...(this.runsDirectory ? [this.runsDirectory] : []), ...this.jobRuns];
  }

  /**
   * `path` (absolute) as it resolves through its links, when that lies inside a root; else a
   * PathRefused naming `where` (the request's key) and the roots it may use.
   */
  async confine(path: string, where: string): Promise<string> {
    const real = await realPathOf(path);
    const roots = await Promise.all(this.roots.map(realPathOf));
    if (roots.some((root) => inside(real, root))) return real;
    if (this.folders.length === 0 && this.runsDirectory === null) {
      throw new PathRefused(`${where}: ${path}: no workspace folder is open, and the language server reads and writes only inside the workspace's folders; open the folder that holds it`);
    }
    const allowed = this.runsDirectory ? 'the workspace folders and moslora.runsDirectory' : 'the workspace folders';
    throw new PathRefused(`${where}: ${path} is outside ${allowed}; the language server reads and writes only there (add its folder to the workspace${this.runsDirectory ? '' : ', or set moslora.runsDirectory'})`);
  }
}
