// Reading a file a user names without trusting what the name points at. A path is opened without
// blocking (a FIFO would wait for a writer for ever, holding one of libuv's four I/O threads),
// must be a regular file (not a FIFO, a device such as /dev/zero, a socket or a folder), and is
// read up to a limit: a whole file up to `maxBytes`, a file of lines one line of at most
// `maxLineBytes` at a time. Text must be UTF-8; the first invalid byte is named by its line and
// its byte in that line.
import { isUtf8 } from 'node:buffer';
import { constants, type Stats } from 'node:fs';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parse as parseJsonc, type ParseError } from 'jsonc-parser';

const CHUNK_BYTES = 1 << 16;
const NEWLINE = 0x0a;
const BOM = [0xef, 0xbb, 0xbf];

export class FileReadError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${problem}`, options);
    this.name = 'FileReadError';
  }
}

/** 1 MiB, 2.5 GiB: sizes as the messages give them. */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${+(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${+(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** What a path that is not a regular file is, for a refusal: "a folder", "a FIFO (named pipe)", … */
export function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Opens `path` for reading if it is a regular file; `what` says what the file should be, for the refusal. */
export async function openRegularFile(path: string, what: string): Promise<FileHandle> {
  // Node refuses such a path with a message that repeats it, NUL bytes and all
  if (path.includes('\0')) throw new FileReadError(path.replaceAll('\0', '\\0'), `cannot read ${what}: the path holds a NUL byte (shown as \\0), which no file name can; fix the path`);
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw new FileReadError(path, code === 'ENOENT' ? `cannot read ${what}: no such file (ENOENT)` : `cannot read ${what} (${message})`, { cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new FileReadError(path, `is ${kindOf(stats)}, not a regular file; ${what} must be a file`);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * The whole of a regular file, refused unread beyond `maxBytes` (a file that grows while read is
 * cut off there and refused too); `hint` follows the refusal (what to do with a larger file).
 */
export async function readRegularFile(path: string, what: string, maxBytes: number, hint?: string): Promise<Buffer> {
  const handle = await openRegularFile(path, what);
  try {
    const { size } = await handle.stat();
    const tooLarge = (bytes: number) => new FileReadError(path, `is ${formatSize(bytes)}, more than the ${formatSize(maxBytes)} ${what} may hold${hint ? `; ${hint}` : ''}`);
    if (size > maxBytes) throw tooLarge(size);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(CHUNK_BYTES, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(total);
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

/**
 * The index of the first byte of `bytes` that does not start or continue a well-formed UTF-8
 * sequence (the Unicode standard's table 3-7: no overlong forms, no surrogates, nothing past
 * U+10FFFF), or -1 when all of it is UTF-8.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b === 0xe0) [need, low] = [2, 0xa0];
    else if (b === 0xed) [need, high] = [2, 0x9f];
    else if (b >= 0xe1 && b <= 0xef) need = 2;
    else if (b === 0xf0) [need, low] = [3, 0x90];
    else if (b === 0xf4) [need, high] = [3, 0x8f];
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else return i;
    if (i + need >= bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return i;
    for (let k = 2; k <= need; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}

function byteProblem(bytes: Uint8Array, index: number): string {
  return `byte ${index + 1} (0x${bytes[index]!.toString(16).padStart(2, '0')}) is not valid UTF-8; save the file as UTF-8`;
}

/** Text of UTF-8 bytes (a leading byte-order mark dropped); throws naming the line and byte of the first invalid one. */
export function decodeUtf8(path: string, bytes: Uint8Array): string {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const lineStart = bytes.lastIndexOf(NEWLINE, bad - 1) + 1;
    let line = 1;
    for (let i = 0; i < lineStart; i++) if (bytes[i] === NEWLINE) line++;
    throw new FileReadError(`${path}:${line}`, byteProblem(bytes.subarray(lineStart), bad - lineStart));
  }
  const start = BOM.every((b, i) => bytes[i] === b) ? BOM.length : 0;
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start).toString('utf8');
}

/** A regular UTF-8 text file, whole, of at most `maxBytes` (readRegularFile). */
export async function readTextFile(path: string, what: string, maxBytes: number, hint?: string): Promise<string> {
  return decodeUtf8(path, await readRegularFile(path, what, maxBytes, hint));
}

/**
 * Where in `text` JSON.parse failed with `error`, as ":line:column" (1-based) to follow a path:
 * V8's position where its message gives one, else the first error jsonc-parser finds (V8 quotes
 * the text around an unexpected token instead); "" when neither says.
 */
export function jsonErrorPlace(text: string, error: unknown): string {
  const at = /at position (\d+)/.exec((error as Error).message);
  let position = at ? Number(at[1]) : firstJsonError(text);
  if (position === null) return '';
  position = Math.min(position, text.length);
  const lineStart = text.lastIndexOf('\n', position - 1) + 1;
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < lineStart; i = text.indexOf('\n', i + 1)) line++;
  return `:${line}:${position - lineStart + 1}`;
}

/**
 * What JSON.parse found wrong, without the text: V8 quotes the text around an unexpected token,
 * and the text is the user's file. The place is jsonErrorPlace's; with `text`, the problem ends
 * with it as "at line L, column C" for a message that does not follow a path.
 */
export function jsonProblem(error: unknown, text?: string): string {
  const problem = (error instanceof Error ? error.message : String(error))
    .replace(/, (?:\.\.\.)?".*"(?:\.\.\.)? is not valid JSON$/s, '')
    .replace(/ (?:in JSON )?at position \d+.*$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'the text ends before the JSON does')
    .replace(/^[A-Z]/, (first) => first.toLowerCase());
  if (text === undefined) return problem;
  const place = /^:(\d+):(\d+)$/.exec(jsonErrorPlace(text, error));
  if (!place) return problem;
  return text.includes('\n') ? `${problem} at line ${place[1]}, column ${place[2]}` : `${problem} at column ${place[2]}`;
}

/** The offset of the first error in `text` read as strict JSON, or null (none, or nested past the parser's stack). */
function firstJsonError(text: string): number | null {
  const errors: ParseError[] = [];
  try {
    parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  } catch (error) {
    if (error instanceof RangeError) return null;
    throw error;
  }
  return errors[0]?.offset ?? null;
}

/** One line of a file: its text, or why it cannot be read (too long, not UTF-8). 1-based. */
export type FileLine = { line: number; text: string } | { line: number; problem: string };

/**
 * The lines of a regular file, read a chunk at a time: a line longer than `maxLineBytes` is
 * skipped unread past the limit and reported, so no line costs more memory than the limit.
 */
export async function* readLines(path: string, what: string, maxLineBytes: number): AsyncGenerator<FileLine> {
  const handle = await openRegularFile(path, what);
  try {
    const buffer = Buffer.alloc(CHUNK_BYTES);
    let parts: Buffer[] = [];
    let length = 0;
    let overlong = false;
    let line = 1;
    const finish = (): FileLine => {
      const bytes = Buffer.concat(parts, length);
      const current = line++;
      const wasOverlong = overlong;
      parts = [];
      length = 0;
      overlong = false;
      if (wasOverlong) return { line: current, problem: `the line is longer than ${formatSize(maxLineBytes)}, the limit for one line; split or shorten it` };
      const bad = firstInvalidUtf8(bytes);
      if (bad >= 0) return { line: current, problem: byteProblem(bytes, bad) };
      const start = current === 1 && BOM.every((b, i) => bytes[i] === b) ? BOM.length : 0;
      return { line: current, text: bytes.toString('utf8', start) };
    };
    const take = (piece: Buffer) => {
      if (overlong) return;
      if (length + piece.length > maxLineBytes) {
        overlong = true;
        parts = [];
        length = 0;
        return;
      }
      parts.push(Buffer.from(piece));
      length += piece.length;
    };
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      let start = 0;
      for (let end = chunk.indexOf(NEWLINE); end >= 0; end = chunk.indexOf(NEWLINE, start)) {
        take(chunk.subarray(start, end));
        yield finish();
        start = end + 1;
      }
      take(chunk.subarray(start));
    }
    if (length > 0 || overlong) yield finish();
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p, one level at a time from the nearest folder that exists. Node's recursive mkdir
 * retries for ever where mkdir answers ENOENT under a folder that exists (/proc, some network
 * and FUSE file systems); here that ENOENT is the error.
 */
export async function makeFolders(path: string): Promise<void> {
  const missing: string[] = [];
  let current = path;
  for (;;) {
    const info = await stat(current).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (info) break;
    missing.unshift(current);
    if (dirname(current) === current) break;
    current = dirname(current);
  }
  for (const folder of missing) {
    await mkdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
  }
}
