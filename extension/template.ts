// The config "MoSLoRA: New Adapter Config" writes: every line commented, training the shipped
// tiny Llama (examples/tiny-model) on the name-the-kind task (examples/tiny-task) when the
// workspace holds them, with paths relative to the new file as the loader reads them.
import { relative, sep } from 'node:path';

export interface TemplatePaths {
  /** Model folder, written as is (relative to the config). */
  model: string;
  train: string;
  eval: string;
}

/** Placeholders for a workspace without the examples: diagnostics point at each one. */
export const PLACEHOLDER_PATHS: TemplatePaths = {
  model: 'path/to/hf-model-folder',
  train: 'path/to/train.jsonl',
  eval: 'path/to/eval.jsonl',
};

/** The examples' paths as the config at `configDir` must write them (forward slashes, `./` when inside). */
export function examplePaths(configDir: string, examplesDir: string): TemplatePaths {
  const rel = (path: string) => {
    const r = relative(configDir, path).split(sep).join('/');
    return r.startsWith('.') ? r : `./${r}`;
  };
  return {
    model: rel(`${examplesDir}/tiny-model`),
    train: rel(`${examplesDir}/tiny-task/train.jsonl`),
    eval: rel(`${examplesDir}/tiny-task/eval.jsonl`),
  };
}

export function configTemplate(paths: TemplatePaths, examples: boolean): string {
  const about = examples
    ? [
        '# Trains MoSLoRA adapters on the shipped tiny Llama (722k parameters, Moby-Dick) to name the',
        '# kind of a few words (animals, colors, numbers, foods), a skill the base model lacks.',
      ]
    : ['# Point `model` at a Hugging Face model folder and `data` at your JSONL files.'];
  return [
    '# MoSLoRA adapter config: LoRA with a learned r×r mixer between A and B (ΔW = s·B·M·A).',
    ...about,
    '# Paths are relative to this file. Hover a key for its documentation; Ctrl+Space completes',
    '# keys, values, model folders and module names. "Train" above starts a run.',
    '',
    '# A Hugging Face model folder: config.json, *.safetensors, tokenizer.json.',
    `model: ${paths.model}`,
    '',
    '# lora: B·A. moslora: B·M·A with a learned mixer M. moslora-fixed: M frozen. linchain: B·M_k···M_1·A.',
    'method: moslora',
    '# Rank: the mixer adds r² parameters per module over LoRA.',
    'r: 8',
    '# The update is scaled by alpha / r.',
    'alpha: 16',
    'dropout: 0.05',
    '# kaiming (the reference code), orthogonal (keeps all r subspaces at the start), identity, zeros.',
    'mixer_init: orthogonal',
    '# Matched by name suffix, as PEFT does (c_attn for GPT-2).',
    'target_modules: [q_proj, k_proj, v_proj, up_proj, down_proj]',
    '',
    'data:',
    '  # JSONL, one {"prompt", "completion"} per line; the loss is on the completion only.',
    `  train: ${paths.train}`,
    `  eval: ${paths.eval}`,
    '  format: completion',
    '  max_length: 64',
    '',
    'training:',
    '  max_steps: 60',
    '  batch_size: 8',
    '  gradient_accumulation: 1',
    '  learning_rate: 0.002',
    '  warmup_steps: 6',
    '  log_interval: 2',
    '  eval_interval: 20',
    '  mixer_interval: 10',
    '  checkpoint_interval: 30',
    '  seed: 42',
    '',
    'output:',
    '  # One folder per run under it: metrics.jsonl, checkpoints/, adapter/, peft/, summary.json.',
    '  runs_dir: runs',
    '',
    '# auto takes the first that starts of tensorflow, webgpu, wasm, cpu (the setting moslora.backend overrides it).',
    'backend: auto',
    '',
  ].join('\n');
}
