// "MoSLoRA: A/B Test" from the editor: the `moslora ab` command line the server runs for it (as a
// CLI child, like merge and export). A cancelled A/B is stopped as Ctrl+C stops it (SIGINT): its
// trainers save a checkpoint, and the next A/B of the same config continues from them.
import { ADAPTER_METHODS } from '../../protocol/methods';
import { MAX_AB_SEEDS, MIN_AB_SEEDS, type AbTestParams } from '../../protocol/editor';

/** `ab CONFIG --methods … --seeds N [--backend B] [--runs-dir D] --json`; throws on a request the CLI would refuse. */
export function abArgs(configPath: string, params: Pick<AbTestParams, 'methods' | 'seeds' | 'backend' | 'runsDir'>): string[] {
  const { methods, seeds } = params;
  if (methods.length < 2) throw new Error(`an A/B compares at least two methods, got ${methods.length}`);
  for (const method of methods) {
    if (!(ADAPTER_METHODS as readonly string[]).includes(method)) throw new Error(`unknown method ${JSON.stringify(method)}: expected one of ${ADAPTER_METHODS.join(', ')}`);
  }
  if (new Set(methods).size !== methods.length) throw new Error(`each method once: ${methods.join(', ')}`);
  if (!Number.isInteger(seeds) || seeds < MIN_AB_SEEDS || seeds > MAX_AB_SEEDS) throw new Error(`seeds: a whole number from ${MIN_AB_SEEDS} to ${MAX_AB_SEEDS}, got ${seeds}`);
  return [
    'ab',
    configPath,
    '--methods',
    methods.join(','),
    '--seeds',
    String(seeds),
    ...(params.backend && params.backend !== 'auto' ? ['--backend', params.backend] : []),
    ...(params.runsDir ? ['--runs-dir', params.runsDir] : []),
    '--json',
  ];
}
