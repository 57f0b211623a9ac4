// What the benchmarks share in how they measure: the turns two or more sides take within one run,
// which kernels count as dispatches, and a measurement in a process of its own (its output and
// its resident peak).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { LoadProgress } from '../kernels/base/native-load';

/** The sides in this round's order: each round starts one further on, so that none always runs first (on a colder or warmer cache). */
export function inTurn<T>(sides: readonly T[], round: number): T[] {
  return sides.map((_, j) => sides[(round + j) % sides.length]!);
}

/** The kernels that compute (all but Reshape and Identity, which relabel or share a tensor): each a dispatch on a GPU. */
export function computingKernels(names: readonly string[]): string[] {
  return names.filter((n) => n !== 'Reshape' && n !== 'Identity');
}

/** Resident peak of this process (Linux), bytes. */
export function residentPeak(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** The last line a child node process prints, its progress (stderr) shown as it comes. */
export function childOutput(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve(out.trim().split('\n').at(-1)!) : reject(new Error(`node ${args.join(' ')} ${signal ? `was killed by ${signal}` : `exited with ${code}`}`)),
    );
  });
}

/** Prints a checkpoint's loading progress to stderr every tenth of its bytes and at the end, under `label`. */
export function loadProgressPrinter(label: string): (progress: LoadProgress) => void {
  let reported = 0;
  return (p) => {
    if (p.bytesRead >= reported + p.bytesTotal / 10 || p.done === p.tensors) {
      reported = p.bytesRead;
      console.error(`  ${label}: ${p.done}/${p.tensors} tensors, ${(p.bytesRead / 1024 ** 3).toFixed(2)}/${(p.bytesTotal / 1024 ** 3).toFixed(2)} GiB read`);
    }
  };
}
