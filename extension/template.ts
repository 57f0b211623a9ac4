// The config "MoSLoRA: New Adapter Config" writes: every line commented, with the model folder
// and the data the workspace holds (the shipped tiny Llama and its name-the-kind task when the
// workspace has examples/), paths relative to the new file as the loader reads them.
import { relativeToConfig } from './scan';

export interface TemplatePaths {
  /** Model folder, written as is (relative to the config). */
  model: string;
  train: string;
  /** Left out: the config has no `eval` (no evaluation). */
  eval?: string;
  /** `data.format`; default completion. */
  format?: 'text' | 'completion' | 'alpaca' | 'chat';
  /** Default: the Llama family's q, k, v, up and down projections. */
  targetModules?: readonly string[];
}

/** Placeholders for a workspace without a model or data: diagnostics point at each one. */
export const PLACEHOLDER_PATHS: TemplatePaths = {
  model: 'path/to/hf-model-folder',
  train: 'path/to/train.jsonl',
  eval: 'path/to/eval.jsonl',
};

/** The examples' paths as the config at `configDir` must write them (forward slashes, `./` when inside). */
export function examplePaths(configDir: string, examplesDir: string): TemplatePaths {
  return {
    model: relativeToConfig(configDir, `${examplesDir}/tiny-model`),
    train: relativeToConfig(configDir, `${examplesDir}/tiny-task/train.jsonl`),
    eval: relativeToConfig(configDir, `${examplesDir}/tiny-task/eval.jsonl`),
  };
}

/**
 * `about`: `example` (the shipped tiny model and task), `found` (what the workspace holds, picked
 * by New Adapter Config; each line of `notes` goes in as a comment), `placeholders`.
 */
export function configTemplate(paths: TemplatePaths, about: 'example' | 'found' | 'placeholders', notes: readonly string[] = []): string {
  const intro =
    about === 'example'
      ? [
          '# Trains MoSLoRA adapters on the shipped tiny Llama (722k parameters, Moby-Dick) to name the',
          '# kind of a few words (animals, colors, numbers, foods), a skill the base model lacks.',
        ]
      : about === 'found'
        ? ['# The model folder and the data below were found in this workspace; the training settings', '# are a short first run to see the curves move: raise max_steps for a real one.']
        : ['# Point `model` at a Hugging Face model folder and `data` at your JSONL files.'];
  return [
    '# MoSLoRA adapter config: LoRA with a learned r×r mixer between A and B (ΔW = s·B·M·A).',
    ...intro,
    ...notes.map((note) => `# ${note}`),
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
    `target_modules: [${(paths.targetModules ?? ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj']).join(', ')}]`,
    '',
    'data:',
    `  # ${FORMAT_NOTES[paths.format ?? 'completion']}`,
    `  train: ${paths.train}`,
    ...(paths.eval ? [`  eval: ${paths.eval}`] : []),
    `  format: ${paths.format ?? 'completion'}`,
    '  max_length: 64',
    '',
    'training:',
    '  max_steps: 60',
    '  batch_size: 8',
    '  gradient_accumulation: 1',
    '  learning_rate: 0.002',
    '  warmup_steps: 6',
    '  log_interval: 2',
    ...(paths.eval ? ['  eval_interval: 20'] : []),
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

const FORMAT_NOTES: Record<NonNullable<TemplatePaths['format']>, string> = {
  completion: 'JSONL, one {"prompt", "completion"} per line; the loss is on the completion only.',
  text: 'JSONL, one {"text"} per line; the loss is on every token.',
  alpaca: 'JSONL, one {"instruction", "input"?, "output"} per line; the loss is on the output only.',
  chat: "JSONL, one {\"messages\": [{\"role\", \"content\"}]} per line, rendered with the model's chat template.",
};
