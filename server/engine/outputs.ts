// The folders merge, export and combine write (--out). An output never is, or holds, one of the
// command's inputs (the adapter, the base model): writing it would destroy what is being read. An
// existing folder is replaced only with --force, and only when it is an earlier output of ours:
// each output folder carries OUTPUT_MARKER, and a folder without it is the user's, not ours.
// The new folder is written beside the old one and renamed over it at the end, so a failure
// leaves the old folder as it was.
import { mkdir, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { makeFolders } from '../formats/files';

export const OUTPUT_MARKER = '.moslora-output.json';

/** Something a command reads, which its output must not touch. */
export interface OutputInput {
  /** What it is, for the refusal: "adapter", "base model". */
  what: string;
  path: string;
}

/** `path` with every symbolic link resolved, also where its last parts do not exist yet. */
async function realPathOf(path: string): Promise<string> {
  const absolute = resolve(path);
  let existing = absolute;
  while (!(await stat(existing).catch(() => null)) && dirname(existing) !== existing) existing = dirname(existing);
  return join(await realpath(existing), relative(existing, absolute));
}

/**
 * Refuses an output folder that is or holds an input, that is a file, or that exists with
 * contents: without `force` always, with it unless the folder is an earlier output of ours.
 */
export async function checkOutputFolder(command: string, out: string, inputs: readonly OutputInput[], force: boolean): Promise<void> {
  const target = await realPathOf(out);
  for (const input of inputs) {
    const source = await realPathOf(input.path);
    if (source === target || source.startsWith(target.endsWith(sep) ? target : target + sep)) {
      throw new Error(`${command}: --out ${out} ${source === target ? 'is' : 'holds'} the ${input.what} ${input.path}, which writing there would destroy; choose a folder outside it`);
    }
  }
  const info = await stat(out).catch(() => null);
  if (!info) return;
  if (!info.isDirectory()) throw new Error(`${command}: --out ${out} is a file, not a folder; choose another`);
  const names = await readdir(out);
  if (names.length === 0) return;
  if (!force) throw new Error(`${command}: ${out} already exists and is not empty; choose another folder or pass --force to replace it`);
  if (!names.includes(OUTPUT_MARKER)) {
    throw new Error(`${command}: ${out} is not a folder moslora wrote (it has no ${OUTPUT_MARKER}), and --force replaces only those; choose another folder, or move its contents away first`);
  }
}

/** Marks a folder as an output of `command`: a later --force may replace it. */
export async function markOutput(dir: string, command: string): Promise<void> {
  await writeFile(join(dir, OUTPUT_MARKER), `${JSON.stringify({ writtenBy: `moslora ${command}` })}\n`);
}

/** The temporary folder an output is written into, beside `out`. */
export function temporaryOutput(out: string, command: string): string {
  return join(dirname(resolve(out)), `.${basename(out)}.${command}-${process.pid}`);
}

/** Puts a finished temporary folder in the place of `out`, marked as our output. */
export async function replaceOutput(temporary: string, out: string, command: string): Promise<void> {
  await markOutput(temporary, command);
  await rm(out, { recursive: true, force: true });
  await rename(temporary, out);
}

/** Writes `out` whole with `write` (into a temporary folder, renamed over `out` at the end), after checkOutputFolder. */
export async function writeOutputFolder<T>(command: string, out: string, write: (dir: string) => Promise<T>): Promise<T> {
  const temporary = temporaryOutput(out, command);
  await makeFolders(dirname(resolve(out)));
  await rm(temporary, { recursive: true, force: true });
  await mkdir(temporary);
  try {
    const result = await write(temporary);
    await replaceOutput(temporary, out, command);
    return result;
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
