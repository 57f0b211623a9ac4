// One typed facade over the extension's settings. No 'vscode' import at run time: ctx.ts hands
// it a reader, so the facade is unit-tested on its own.
import { isAbsolute, resolve } from 'node:path';
import { BACKEND_PREFERENCES, type BackendPreference } from '../protocol/backends';

export const SECTION = 'moslora';

/** Setting keys under `moslora.`. `trace.server` is read by vscode-languageclient itself. */
export const SETTINGS = {
  backend: 'backend',
  runsDirectory: 'runsDirectory',
  traceServer: 'trace.server',
} as const;

export interface SettingsReader {
  get(key: string): unknown;
}

export class Config {
  constructor(
    private readonly settings: SettingsReader,
    /** The first workspace folder, where relative settings paths start; undefined without one. */
    private readonly workspaceRoot: () => string | undefined,
  ) {}

  /** `moslora.backend`; anything unknown reads as `auto`. */
  get backend(): BackendPreference {
    const value = this.settings.get(SETTINGS.backend);
    return typeof value === 'string' && (BACKEND_PREFERENCES as readonly string[]).includes(value) ? (value as BackendPreference) : 'auto';
  }

  /** What a job is told: the backend when the user chose one; with `auto` the config decides. */
  get backendOverride(): BackendPreference | undefined {
    const backend = this.backend;
    return backend === 'auto' ? undefined : backend;
  }

  /**
   * `moslora.runsDirectory` as an absolute path (relative paths start at the first workspace
   * folder, `~/` at the home folder); undefined means each config's own `output.runs_dir`.
   */
  get runsDirectory(): string | undefined {
    const value = this.settings.get(SETTINGS.runsDirectory);
    if (typeof value !== 'string' || !value.trim()) return undefined;
    const path = value.trim();
    if (path === '~' || path.startsWith('~/')) return resolve(process.env.HOME ?? '/', path.slice(2));
    if (isAbsolute(path)) return path;
    const root = this.workspaceRoot();
    return root ? resolve(root, path) : undefined;
  }
}
