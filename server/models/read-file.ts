// Reading the files a user's folders hold (a config, a model's config.json and tokenizer, a run's
// records, a dataset's first lines), where a name may stand for anything: a FIFO (a read waits
// for a writer forever, and four of them stall every file read of the process), /dev/zero (a
// read never ends), a 10 GB file called config.json. Each file is opened without waiting
// (O_NONBLOCK), then looked at: only a regular file within its size limit is read. Errors name
// the file and why, never what it holds.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export class FileReadError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
    /** The errno code when the file system refused (ENOENT, EACCES, …). */
    readonly code?: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'FileReadError';
  }
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

function kindOf(stats: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `file` for reading if it is a regular file; the caller closes the handle. `what` says
 * what the file should be, for the error ("a config", "a dataset").
 */
export async function openRegularFile(file: string, what: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileReadError(file, code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? 'unknown error'})`, code);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new FileReadError(file, `is ${kindOf(stats)}, not ${what}`);
    return { handle, size: stats.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The text of a regular file of at most `maxBytes`. `limit` says why the limit is what it is,
 * e.g. "a model's config.json is a few KB".
 */
export async function readSmallFile(file: string, maxBytes: number, what: string, limit: string): Promise<string> {
  const { handle, size } = await openRegularFile(file, what);
  try {
    const tooLarge = (bytes: number) => new FileReadError(file, `is ${formatSize(bytes)}, more than the ${formatSize(maxBytes)} read for ${what} (${limit})`);
    if (size > maxBytes) throw tooLarge(size);
    // One byte more than allowed: a file that grew since it was looked at is refused too.
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw tooLarge(length);
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * What JSON.parse found wrong, without the text itself (V8 quotes the text around an unexpected
 * token): the problem and, where V8 gives one, its line and column.
 */
export function jsonProblem(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const position = /at position (\d+)/.exec(message);
  const problem = message
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/ (?:in JSON )?at position \d+.*$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'the text ends before the JSON does')
    .replace(/^[A-Z]/, (first) => first.toLowerCase());
  if (!position) return problem;
  const offset = Number(position[1]);
  const before = text.slice(0, offset);
  const column = offset - before.lastIndexOf('\n');
  return text.includes('\n') ? `${problem} at line ${before.split('\n').length}, column ${column}` : `${problem} at column ${column}`;
}
