// Where the webgpu tests find a GPU when there is none: Dawn on SwiftShader, the software Vulkan
// driver Debian's Chromium ships, through Chromium's own Vulkan loader (libvulkan.so.1, found by
// LD_LIBRARY_PATH, which is read at process start: the tests run their webgpu code in a child).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { promisify } from 'node:util';

export const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
export const SWIFTSHADER_ENV = { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER, LD_LIBRARY_PATH: dirname(SWIFTSHADER), XDG_RUNTIME_DIR: tmpdir() };

/** Why the webgpu tests cannot run here, or null. */
export const swiftshaderMissing = existsSync(SWIFTSHADER) ? null : `no SwiftShader at ${SWIFTSHADER}: install Debian's chromium (apt-get install chromium) to run the webgpu tests`;

/** A test's `skip`: locally a missing driver skips it with the reason; in CI it must run, so it fails. */
export function skipWithout(missing: string | null): string | false {
  return missing !== null && !process.env.CI ? missing : false;
}

/** Runs a helper script (test/helpers) under tsx on SwiftShader, with `args`; its last line of output, parsed. */
export async function runOnSwiftshader<T>(helper: string, args: string[] = []): Promise<T> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', helper, ...args], { env: SWIFTSHADER_ENV, maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
}
