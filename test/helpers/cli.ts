// Runs the built CLI (dist/cli.js) as a user does, and says how it ended: exit code or signal,
// stdout, stderr, and its pid (to look for files named after it).
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');
export const CLI_MISSING = existsSync(CLI) ? false : 'dist/cli.js is missing: run `npm run build` first';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
  /** When it was started (Date.now()). */
  startedAt: number;
  /** True when the run outlived `timeoutMs` and was killed. */
  timedOut: boolean;
}

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** `node dist/cli.js ...args`; never rejects for a failed command, only for a CLI that cannot start. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, pid: child.pid!, startedAt, timedOut });
    });
  });
}

/** The process environment without a variable (so that a test sees what the CLI sets itself). */
export function envWithout(name: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env[name];
  return env;
}

/**
 * Whether the run wrote onnxruntime's telemetry log, /tmp/mat-debug-<pid>.log (the CLI turns the
 * telemetry off): an earlier process with the same pid may have left one, so only a file written
 * since the run started counts.
 */
export function wroteTelemetryLog(run: CliRun): boolean {
  const log = `/tmp/mat-debug-${run.pid}.log`;
  return existsSync(log) && statSync(log).mtimeMs >= run.startedAt;
}
