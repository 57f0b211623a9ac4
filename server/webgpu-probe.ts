// Looks for a WebGPU adapter in a child process, before the backend loads Dawn into this one. A
// machine without a usable GPU is the common case on CPU: Dawn and the Vulkan drivers then print
// their complaints straight to the process's stderr (every `moslora train` would show them), and
// a broken driver can crash the process that probes it. The child's output becomes the reason
// `auto` gives for passing webgpu over.
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { NO_WEBGPU_ADAPTER, type WebgpuProbe } from '../kernels/backends/backend';

const PROBE = `
const { create } = await import(process.argv[1]);
const adapter = await create(JSON.parse(process.argv[2])).requestAdapter({ powerPreference: 'high-performance' });
const info = adapter && adapter.info;
process.stdout.write(JSON.stringify(adapter ? { name: info.description || info.vendor || 'WebGPU adapter', software: info.isFallbackAdapter === true } : null));
process.exit(0);
`;

/** Dawn's and the drivers' own words, without the lines every Mesa driver prints when no display is set. */
function complaint(stderr: string): string | null {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/XDG_RUNTIME_DIR/.test(line) && !line.startsWith('at ') && !line.startsWith('- '));
  return lines.length ? lines.join('; ').replace(/^Warning: /, '') : null;
}

/** Dawn's adapter as create(dawnFlags) finds it (kernels/backends/backend.ts BackendOptions.dawnFlags). */
export function probeWebgpu(dawnFlags: readonly string[] = []): Promise<WebgpuProbe> {
  let entry: string;
  try {
    entry = require.resolve('webgpu');
  } catch {
    return Promise.resolve({ reason: 'the webgpu package (Dawn) is not installed' });
  }
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', PROBE, pathToFileURL(entry).href, JSON.stringify(dawnFlags)], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) {
        const how = error.signal ? `was killed by ${error.signal}` : `failed (${complaint(stderr) ?? error.message.split('\n')[0]})`;
        resolve({ reason: `looking for a GPU adapter ${how}: the GPU driver may be broken` });
        return;
      }
      const adapter = JSON.parse(stdout) as { name: string; software: boolean } | null;
      if (adapter) resolve({ adapter });
      else {
        const said = complaint(stderr);
        resolve({ reason: said ? `Dawn found no GPU adapter: ${said}` : NO_WEBGPU_ADAPTER });
      }
    });
  });
}
