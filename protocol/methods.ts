// The adapter methods by name: what configs, the trainer's overrides, an A/B's manifest, adapter
// files and the panel's legends say. kernels/adapter/spec.ts says what each one computes.
export const ADAPTER_METHODS = ['lora', 'moslora', 'moslora-fixed', 'linchain'] as const;
export type AdapterMethod = (typeof ADAPTER_METHODS)[number];

/**
 * What an A/B compares: a method, or a method with DoRA (`use_dora: true`). `dora` is LoRA with
 * DoRA, the DoRA paper's method; the others add `+dora` to the method's name.
 */
export const AB_METHODS = ['lora', 'moslora', 'moslora-fixed', 'linchain', 'dora', 'moslora+dora', 'moslora-fixed+dora', 'linchain+dora'] as const;
export type AbMethod = (typeof AB_METHODS)[number];

/** The config an A/B method trains: its adapter method and whether DoRA is on. */
export function abMethodConfig(name: AbMethod): { method: AdapterMethod; useDora: boolean } {
  if (name === 'dora') return { method: 'lora', useDora: true };
  const [method, dora] = name.split('+') as [AdapterMethod, string | undefined];
  return { method, useDora: dora === 'dora' };
}
