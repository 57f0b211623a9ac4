// The adapter config users edit (*.moslora.yaml / *.moslora.json): one zod schema, from which
// the TypeScript types, the defaults, the hover docs and the committed JSON Schema all come.
// Defaults follow the reference MoSLoRA commonsense setup (r 16, α 32, dropout 0.05, lr 3e-4,
// warmup 100, adapters on q, k, v, up and down projections).
import { z } from 'zod';
import { MIXER_INITS } from '../../kernels/adapter/spec';
import { DEFAULT_GROUP_SIZE, MAX_GROUP_SIZE, MIN_GROUP_SIZE, type BaseFormat, type BaseFormats } from '../../kernels/base/quant';
import { BACKEND_PREFERENCES } from '../../protocol/backends';
import { ADAPTER_METHODS } from '../../protocol/methods';

/** Stored dtypes of the frozen base that are not quantised (torch_dtype). */
export const BASE_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
/** 4-bit formats (bnb_4bit_quant_type). */
export const QUANT_TYPES_4BIT = ['nf4', 'int4'] as const;

export const DATA_FORMATS = ['text', 'alpaca', 'chat', 'completion'] as const;
export const SCHEDULES = ['linear', 'cosine', 'constant'] as const;
/** The record fields the data formats read (text; prompt, completion; instruction, input, output; messages). */
export const DATASET_FIELDS = ['text', 'prompt', 'completion', 'instruction', 'input', 'output', 'messages'] as const;

const positiveInt = () => z.number().int().positive();

/** target_modules when a config does not say: the reference MoSLoRA setup's. */
export const DEFAULT_TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'] as const;

/** Why a target_modules pattern is not a regular expression; null when it is one. */
export function regexProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

export const dataSchema = z
  .object({
    train: z.string().min(1).describe('Training data: a JSONL file (one JSON object per line) or a JSON array, relative to this config.'),
    eval: z.string().min(1).optional().describe('Held-out data in the same format. Without it, `eval_split` carves one out of `train`.'),
    eval_split: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe('Share of `train` held out for evaluation when no `eval` file is given (0 = no evaluation).'),
    format: z
      .enum(DATA_FORMATS)
      .default('completion')
      .describe(
        'text: {"text"}. completion: {"prompt", "completion"}. alpaca: {"instruction", "input"?, "output"}. chat: {"messages": [{"role", "content"}]}, rendered with the model\'s chat template.',
      ),
    fields: z
      .object(Object.fromEntries(DATASET_FIELDS.map((f) => [f, z.string().min(1).optional()])) as Record<(typeof DATASET_FIELDS)[number], z.ZodOptional<z.ZodString>>)
      .strict()
      .optional()
      .describe('Your dataset\'s own names for the fields the format reads, e.g. {prompt: question, completion: answer}.'),
    max_length: positiveInt().default(256).describe('Tokens per example; longer examples are truncated (the reference setup uses 256).'),
    packing: z.boolean().default(false).describe('Concatenate examples into full `max_length` rows instead of padding each one.'),
    train_on_prompt: z
      .boolean()
      .default(false)
      .describe('Also compute the loss on prompt tokens. Off: prompt tokens get label -100, as in the reference setup.'),
  })
  .strict()
  .describe('The dataset: `train` file (required), `eval` file or `eval_split`, `format`, `max_length`, `packing`, `train_on_prompt`.');

export const trainingSchema = z
  .object({
    epochs: z.number().positive().default(3).describe('Passes over the training data (ignored when `max_steps` is set).'),
    max_steps: positiveInt().optional().describe('Optimizer steps to run; overrides `epochs`.'),
    batch_size: positiveInt().default(4).describe('Examples per forward/backward pass.'),
    gradient_accumulation: positiveInt()
      .default(4)
      .describe('Micro-batches per optimizer step: the effective batch is batch_size × gradient_accumulation (16 by default, as the reference).'),
    gradient_checkpointing: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe(
        "Keep only each layer's input for the backward pass and recompute the rest there, as transformers' gradient_checkpointing: activation memory of one layer instead of all, for about a third more time per step. auto: on when the run would not fit the backend's memory without it (the wasm heap's 4 GiB).",
      ),
    workers: z
      .union([positiveInt(), z.literal('auto')])
      .default('auto')
      .describe(
        "Threads that share each micro-batch on the CPU backends (wasm, cpu), each computing some of its rows with its own copy of the model: the same loss curve, up to rounding, in less time. auto: one per core, at most batch_size, and no more than the free memory holds. The cores they leave go to their products (wasm, with onnxruntime's MLAS). GPU backends use one.",
      ),
    learning_rate: z.number().positive().max(1).default(3e-4).describe('Peak learning rate of AdamW.'),
    schedule: z.enum(SCHEDULES).default('linear').describe('Learning-rate decay after warmup: linear to 0, cosine to 0, or constant.'),
    warmup_steps: z.number().int().min(0).default(100).describe('Optimizer steps of linear warmup from 0 to `learning_rate`.'),
    weight_decay: z.number().min(0).default(0).describe('AdamW decoupled weight decay.'),
    grad_clip: z.number().positive().optional().default(1).describe('Clip the global gradient norm to this value (omit the key to keep 1.0).'),
    seed: z.number().int().min(0).default(42).describe('Seeds data shuffling, adapter init and dropout: the same config and seed give the same loss curve.'),
    log_interval: positiveInt().default(10).describe('Optimizer steps between logged metrics.'),
    eval_interval: positiveInt().default(100).describe('Optimizer steps between evaluations.'),
    checkpoint_interval: positiveInt().default(200).describe('Optimizer steps between checkpoints.'),
    checkpoints_kept: positiveInt().default(2).describe('Newest checkpoints kept on disk; older ones are deleted.'),
    mixer_interval: positiveInt().default(50).describe('Optimizer steps between mixer snapshots for the heatmap scrubber.'),
  })
  .strict();

export const outputSchema = z
  .object({
    runs_dir: z.string().min(1).default('runs').describe('Folder that holds one folder per run, relative to this config.'),
    run_name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
      .optional()
      .describe('Folder name of this run; default: the config file name and the start time.'),
  })
  .strict();

export const configSchema = z
  .object({
    model: z.string().min(1).describe('A Hugging Face model folder (config.json, *.safetensors, tokenizer.json), relative to this config.'),
    torch_dtype: z
      .enum(BASE_DTYPES)
      .default('float32')
      .describe(
        "Stored precision of the frozen base, as transformers' torch_dtype: float32, or bfloat16 / float16 (half the memory, rounded to nearest even). With load_in_8bit or load_in_4bit it is the precision of what they leave unquantised: the embedding and lm_head, as bitsandbytes leaves them. Products and the adapter stay float32. On wasm and cpu the base lives outside the wasm heap; on webgpu it is held as float32 tensors of these values.",
      ),
    load_in_8bit: z
      .boolean()
      .default(false)
      .describe(
        "Store the frozen base's linear layers (not the embedding and lm_head) in 8 bits, as bitsandbytes' load_in_8bit: symmetric int8 with a float32 scale per group of quant_group_size weights along d_in (scale = max|w| / 127), a quarter of float32's memory; each product dequantises blocks of the weight to float32. The adapter trains in float32 (QLoRA's design).",
      ),
    load_in_4bit: z
      .boolean()
      .default(false)
      .describe(
        "Store the frozen base's linear layers (not the embedding and lm_head) in 4 bits, as bitsandbytes' load_in_4bit (QLoRA): bnb_4bit_quant_type nf4 or int4, a float32 scale per group of quant_group_size weights along d_in, about an eighth of float32's memory. The adapter trains in float32.",
      ),
    bnb_4bit_quant_type: z
      .enum(QUANT_TYPES_4BIT)
      .optional()
      .describe(
        "The 4-bit format with load_in_4bit (default nf4): nf4 is QLoRA's NormalFloat4, bitsandbytes' quant_type 'nf4' (16 levels at the quantiles of a normal distribution, times the group's absmax); int4 is symmetric integers −8…7 times a scale (onnxruntime's MatMulNBits layout).",
      ),
    quant_group_size: z
      .number()
      .int()
      .optional()
      .describe(
        "Weights per float32 scale along d_in with load_in_8bit or load_in_4bit (bitsandbytes' blocksize, GPTQ's group_size): a power of two from 16 to 1024, default 64 as bitsandbytes' 4-bit. Smaller groups are more exact and take more memory (4 bytes per group).",
      ),
    method: z
      .enum(ADAPTER_METHODS)
      .default('moslora')
      .describe('lora: B·A. moslora: B·M·A with a learned r×r mixer M. moslora-fixed: M frozen. linchain: B·M_k···M_1·A.'),
    r: positiveInt().default(16).describe('Adapter rank.'),
    alpha: z.number().positive().default(32).describe('Scaling numerator: the update is scaled by alpha / r (alpha / √r with use_rslora).'),
    dropout: z.number().min(0).lt(1).default(0.05).describe('Dropout on the adapter input while training.'),
    mixer_init: z
      .enum(MIXER_INITS)
      .default('kaiming')
      .describe('Initial mixer: kaiming (the reference code), orthogonal (keeps all r subspaces at the start), identity (starts as LoRA), zeros.'),
    chain_length: z.number().int().min(2).default(2).describe('Mixers in a linchain (method: linchain).'),
    use_rslora: z.boolean().default(false).describe('Scale by alpha / √r (rank-stabilised LoRA).'),
    use_dora: z
      .boolean()
      .default(false)
      .describe(
        "DoRA, as PEFT's use_dora, with any method: each adapted weight becomes m · (W + ΔW) / ‖W + ΔW‖, a learned magnitude m per output feature (d_out more parameters per module, starting at the norms of W) times the direction of W + ΔW. With dropout above 0, training computes the base layer's product twice, as PEFT does.",
      ),
    target_modules: z
      .union([
        z.array(z.string().min(1)).min(1),
        z
          .string()
          .min(1)
          .refine((pattern) => regexProblem(pattern) === null, { error: (issue) => `not a valid regular expression: ${regexProblem(String(issue.input))}` }),
      ])
      .default([...DEFAULT_TARGET_MODULES])
      .describe(
        "Linear modules to adapt, as PEFT takes them: a list matched by name suffix (q_proj, or model.layers.0.self_attn.q_proj; c_attn for GPT-2), 'all-linear' (every linear module but lm_head), or a regular expression that matches whole module names (e.g. '.*\\.(q|v)_proj').",
      ),
    data: dataSchema,
    training: trainingSchema.prefault({}),
    output: outputSchema.prefault({}),
    backend: z.enum(BACKEND_PREFERENCES).default('auto').describe('Compute backend; auto takes the first that starts of tensorflow, webgpu, wasm, cpu.'),
  })
  .strict()
  .superRefine((config, context) => {
    if (config.load_in_8bit && config.load_in_4bit) {
      context.addIssue({ code: 'custom', path: ['load_in_4bit'], message: 'load_in_8bit and load_in_4bit are both true; choose one' });
    }
    if (config.bnb_4bit_quant_type !== undefined && !config.load_in_4bit) {
      context.addIssue({ code: 'custom', path: ['bnb_4bit_quant_type'], message: 'bnb_4bit_quant_type applies with load_in_4bit: true only; set it, or remove this key' });
    }
    if (config.quant_group_size !== undefined) {
      if (!config.load_in_8bit && !config.load_in_4bit) {
        context.addIssue({ code: 'custom', path: ['quant_group_size'], message: 'quant_group_size applies with load_in_8bit or load_in_4bit only; set one, or remove this key' });
      }
      const g = config.quant_group_size;
      if (!(g >= MIN_GROUP_SIZE && g <= MAX_GROUP_SIZE && (g & (g - 1)) === 0)) {
        context.addIssue({ code: 'custom', path: ['quant_group_size'], message: `quant_group_size must be a power of two from ${MIN_GROUP_SIZE} to ${MAX_GROUP_SIZE} (e.g. ${DEFAULT_GROUP_SIZE}), got ${g}` });
      }
    }
  });

/** What torch_dtype, load_in_8bit / load_in_4bit, bnb_4bit_quant_type and quant_group_size choose. */
export function baseFormats(config: Pick<AdapterConfig, 'torch_dtype' | 'load_in_8bit' | 'load_in_4bit' | 'bnb_4bit_quant_type' | 'quant_group_size'>): BaseFormats {
  const groupSize = config.quant_group_size ?? DEFAULT_GROUP_SIZE;
  const embedding: BaseFormat = { precision: config.torch_dtype, groupSize };
  const linear: BaseFormat = config.load_in_4bit ? { precision: config.bnb_4bit_quant_type ?? 'nf4', groupSize } : config.load_in_8bit ? { precision: 'int8', groupSize } : embedding;
  return { linear, embedding };
}

/** A config as written (defaults not yet filled). */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated config with every default filled; paths still as written. */
export type AdapterConfig = z.output<typeof configSchema>;

/** The JSON Schema committed as schemas/moslora.schema.json, for editors and other tools. */
export function configJsonSchema(): object {
  return {
    ...z.toJSONSchema(configSchema, { io: 'input' }),
    $id: 'https://moslora-studio.invalid/schemas/moslora.schema.json',
    title: 'MoSLoRA Studio adapter config',
  };
}
