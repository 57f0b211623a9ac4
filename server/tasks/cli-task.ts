// Long operations the editor asks for (merge, export, generate) run as `node dist/cli.js … --json`
// child processes: loading a model never blocks the server's event loop, a crash takes only the
// child, and cancelling the request kills it. The CLI prints ONE JSON object as its last stdout
// line on success, and its error on stderr with a non-zero exit code on failure.
import { spawn } from 'node:child_process';
import { LSPErrorCodes, ResponseError, type CancellationToken } from 'vscode-languageserver';

export interface CliTaskOptions {
  /** dist/cli.js. */
  cli: string;
  token?: CancellationToken;
  /** What cancelling sends the child (default SIGTERM); SIGINT asks `moslora ab` to stop its runs at a checkpoint. */
  cancelSignal?: NodeJS.Signals;
  /** After the cancel signal, how long the child has to exit before SIGKILL. */
  killGraceMs?: number;
  /** Each line the child writes to stderr, for the server log. */
  onStderr?: (line: string) => void;
}

const KEPT_STDERR_LINES = 20;
/** The line a failing CLI says why on (main.ts's `moslora: …`, commander's `error: …`). */
const ERROR_LINE = /^(moslora|error): /;

/** Runs the CLI with `args` and resolves with its last stdout line parsed as JSON. */
export function runCliJson<T>(args: readonly string[], options: CliTaskOptions): Promise<T> {
  const what = `moslora ${args[0] ?? ''}`.trim();
  return new Promise<T>((resolve, reject) => {
    if (options.token?.isCancellationRequested) {
      reject(new ResponseError(LSPErrorCodes.RequestCancelled, `${what}: cancelled`));
      return;
    }
    const child = spawn(process.execPath, [options.cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const stderr: string[] = [];
    /** The first error line, kept when later lines (commander's help, say) push it out of the tail. */
    let said: string | undefined;
    let partial = '';
    let cancelled = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) keep(line);
    });
    const keep = (line: string) => {
      if (!line.trim()) return;
      options.onStderr?.(line);
      stderr.push(line);
      if (said === undefined && ERROR_LINE.test(line)) said = line;
      if (stderr.length > KEPT_STDERR_LINES) stderr.shift();
    };
    let killTimer: NodeJS.Timeout | undefined;
    const cancellation = options.token?.onCancellationRequested(() => {
      cancelled = true;
      child.kill(options.cancelSignal ?? 'SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs ?? 3000);
    });
    child.on('error', (error) => {
      cancellation?.dispose();
      reject(new Error(`${what}: could not start ${process.execPath} ${options.cli}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      cancellation?.dispose();
      clearTimeout(killTimer);
      keep(partial);
      if (cancelled) {
        reject(new ResponseError(LSPErrorCodes.RequestCancelled, `${what}: cancelled`));
        return;
      }
      if (code !== 0) {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const shown = said !== undefined && !stderr.includes(said) ? [said, '…', ...stderr] : stderr;
        reject(new Error(shown.length ? shown.join('\n') : `${what} ${how} and printed no error`));
        return;
      }
      const last = stdout.trimEnd().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${what}: expected one JSON object as the last line of its output, got ${JSON.stringify(last.slice(0, 200))}`));
      }
    });
  });
}
