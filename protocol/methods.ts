// The adapter methods by name: what configs, the trainer's overrides, an A/B's manifest, adapter
// files and the panel's legends say. kernels/adapter/spec.ts says what each one computes.
export const ADAPTER_METHODS = ['lora', 'moslora', 'moslora-fixed', 'linchain'] as const;
export type AdapterMethod = (typeof ADAPTER_METHODS)[number];
