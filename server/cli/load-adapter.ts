// Loading an adapter for a command: what the loader decided goes to stderr as notes, beside the
// progress lines, so that `--json` keeps its one object on stdout.
import { resolve } from 'node:path';
import { loadAdapter, type LoadedAdapter } from '../engine/adapter-files';

export async function loadAdapterWithNotes(dir: string): Promise<LoadedAdapter> {
  const loaded = await loadAdapter(resolve(dir));
  for (const note of loaded.notes) console.error(`note: ${note}`);
  return loaded;
}
