// Where the language server may read and write for a request: inside the workspace's folders
// (from initialize, kept current by workspace/didChangeWorkspaceFolders) and the editor's runs
// folder (moslora.runsDirectory). A relative path is resolved against a workspace folder, never
// the server's working directory. A path a request names is resolved through its symbolic links
// first, so a link in the workspace that points elsewhere counts as elsewhere.
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
  /** moslora.runsDirectory as the editor sends it: absolute, or relative to the first folder. */
  private runsSetting: string | null = null;

  /** The workspace's folders, absolute (initialize's workspaceFolders, else its rootUri). */
  setFolders(folders: readonly string[]): void {
    this.folders = folders.filter((folder) => isAbsolute(folder));
  }

  changeFolders(added: readonly string[], removed: readonly string[]): void {
    this.setFolders([...this.folders.filter((folder) => !removed.includes(folder)), ...added]);
  }

  /** The editor's moslora.runsDirectory, or null when unset. */
  setRunsDirectory(dir: string | null): void {
    this.runsSetting = dir;
  }

  /** moslora.runsDirectory, absolute; null when unset, or relative with no folder open. */
  get runsDirectory(): string | null {
    if (this.runsSetting === null) return null;
    if (isAbsolute(this.runsSetting)) return this.runsSetting;
    return this.folders[0] ? resolve(this.folders[0], this.runsSetting) : null;
  }

  get roots(): string[] {
    const runs = this.runsDirectory;
    return [...this.folders, ...(runs ? [runs] : [])];
  }

  /**
   * `path` made absolute: relative to the workspace folder that holds `near` (a config), else to
   * the first folder; a PathRefused naming `where` when no folder is open.
   */
  resolve(path: string, where: string, near?: string): string {
    if (isAbsolute(path)) return path;
    const folder = (near === undefined ? undefined : this.folders.find((root) => inside(resolve(near), root))) ?? this.folders[0];
    if (!folder) throw new PathRefused(`${where}: ${path} is relative, and no workspace folder is open to resolve it against; give an absolute path`);
    return resolve(folder, path);
  }

  /**
   * `path` (absolute) as it resolves through its links, when that lies inside a root; else a
   * PathRefused naming `where` (the request's key) and the roots it may use.
   */
  async confine(path: string, where: string): Promise<string> {
    const real = await realPathOf(path);
    const roots = await Promise.all(this.roots.map(realPathOf));
    if (roots.some((root) => inside(real, root))) return real;
    const runs = this.runsDirectory;
    if (this.folders.length === 0 && runs === null) {
      throw new PathRefused(`${where}: ${path}: no workspace folder is open, and the language server reads and writes only inside the workspace's folders; open the folder that holds it`);
    }
    const allowed = runs ? 'the workspace folders and moslora.runsDirectory' : 'the workspace folders';
    throw new PathRefused(`${where}: ${path} is outside ${allowed}; the language server reads and writes only there (add its folder to the workspace${runs ? '' : ', or set moslora.runsDirectory'})`);
  }
}
