// Which hyperparameters tell runs apart: the keys of their config.yaml (flattened by the
// extension to `training.learning_rate` and the like) whose values are not the same in all.
import type { Hyperparameter } from '../../protocol/webview';

export interface Configured {
  hyperparameters: Record<string, Hyperparameter> | undefined;
}

/**
 * The keys whose values differ between the runs that have a config (a key one run lacks
 * differs), in the order the configs list them. Fewer than two such runs: none.
 */
export function differingKeys(runs: readonly Configured[]): string[] {
  const configs = runs.flatMap((run) => (run.hyperparameters ? [run.hyperparameters] : []));
  if (configs.length < 2) return [];
  const keys = new Set(configs.flatMap((config) => Object.keys(config)));
  return [...keys].filter((key) => new Set(configs.map((config) => valueText(config, key))).size > 1);
}

/** A value as Compare shows it; "–" where the run's config has no such key. */
export function valueText(config: Record<string, Hyperparameter> | undefined, key: string): string {
  if (!config || !Object.prototype.hasOwnProperty.call(config, key)) return '–';
  const value = config[key];
  return value === null ? 'null' : String(value);
}
