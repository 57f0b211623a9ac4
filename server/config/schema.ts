// The adapter config users edit (*.moslora.yaml / *.moslora.json): one zod schema, from which
// the TypeScript types, the defaults, the hover docs and the committed JSON Schema all come.
// Defaults follow the reference MoSLoRA commonsense setup (r 16, α 32, dropout 0.05, lr 3e-4,
// warmup 100, adapters on q, k, v, up and down projections). Every number and string has an
// upper bound a real run stays far below, its reason in the key's description: a config is a
// user's file, and nothing downstream (the memory estimate, the editor, the trainer) may be
// handed 1e20 examples per batch.
import { z } from 'zod';
import { MIXER_INITS } from '../../kernels/adapter/spec';
import { DEFAULT_GROUP_SIZE, MAX_GROUP_SIZE, MIN_GROUP_SIZE, type BaseFormat, type BaseFormats } from '../../kernels/base/quant';
import { BACKEND_PREFERENCES } from '../../protocol/backends';
import { ADAPTER_METHODS } from '../../protocol/methods';
import { MAX_PATTERN_LENGTH, targetPatternProblem } from '../models/target-pattern';

/** Stored dtypes of the frozen base that are not quantised (torch_dtype). */
export const BASE_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
/** 4-bit formats (bnb_4bit_quant_type). */
export const QUANT_TYPES_4BIT = ['nf4', 'int4'] as const;

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

export const DATA_FORMATS = ['text', 'alpaca', 'chat', 'completion'] as const;
export const SCHEDULES = ['linear', 'cosine', 'constant'] as const;
/** The record fields the data formats read (text; prompt, completion; instruction, input, output; messages). */
export const DATASET_FIELDS = ['text', 'prompt', 'completion', 'instruction', 'input', 'output', 'messages'] as const;

const positiveInt = (max: number) => z.number().int().positive().max(max);

/** The longest path Linux takes (PATH_MAX). */
export const MAX_PATH_LENGTH = 4096;
/** Optimizer steps: ten million is four months at ten steps a second. */
export const MAX_STEPS = 10_000_000;
/** Entries of a target_modules list: every module of a 500-layer model, by full name. */
export const MAX_TARGET_ENTRIES = 4096;
const path = () => z.string().min(1).max(MAX_PATH_LENGTH);
const pathDoc = (what: string) => `${what} At most ${MAX_PATH_LENGTH.toLocaleString('en-US')} characters, the longest path Linux takes.`;
const steps = (what: string) => `${what} At most ${MAX_STEPS.toLocaleString('en-US')} (the most optimizer steps a run takes).`;

/** target_modules when a config does not say: the reference MoSLoRA setup's. */
export const DEFAULT_TARGET_MODULES = ['q_proj', 'k_proj', 'v_proj', 'up_proj', 'down_proj'] as const;

export const dataSchema = z
  .object({
    train: path().describe(pathDoc('Training data: a JSONL file (one JSON object per line) or a JSON array, relative to this config.')),
    eval: path().optional().describe(pathDoc('Held-out data in the same format. Without it, `eval_split` carves one out of `train`.')),
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
      .object(Object.fromEntries(DATASET_FIELDS.map((f) => [f, z.string().min(1).max(256).optional()])) as Record<(typeof DATASET_FIELDS)[number], z.ZodOptional<z.ZodString>>)
      .strict()
      .optional()
      .describe('Your dataset\'s own names for the fields the format reads, e.g. {prompt: question, completion: answer}. At most 256 characters each, the length of a field name rather than of a record.'),
    max_length: positiveInt(131_072)
      .default(256)
      .describe('Tokens per example; longer examples are truncated (the reference setup uses 256). At most 131,072, the longest context of the supported models.'),
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
    epochs: z
      .number()
      .positive()
      .max(10_000)
      .default(3)
      .describe('Passes over the training data (ignored when `max_steps` is set). At most 10,000: a fine-tune has long overfit its data by then.'),
    max_steps: positiveInt(MAX_STEPS).optional().describe(steps('Optimizer steps to run; overrides `epochs`.')),
    batch_size: positiveInt(4096)
      .default(4)
      .describe('Examples per forward/backward pass. At most 4,096, more than one device holds; a larger effective batch comes from `gradient_accumulation`.'),
    gradient_accumulation: positiveInt(4096)
      .default(4)
      .describe(
        'Micro-batches per optimizer step: the effective batch is batch_size × gradient_accumulation (16 by default, as the reference). At most 4,096: with the largest batch_size, 16.7 million examples per step.',
      ),
    gradient_checkpointing: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe(
        "Keep only each layer's input for the backward pass and recompute the rest there, as transformers' gradient_checkpointing: activation memory of one layer instead of all, for about a third more time per step. auto: on when the run would not fit the backend's memory without it (the wasm heap's 4 GiB).",
      ),
    workers: z
      .union([positiveInt(1024), z.literal('auto')])
      .default('auto')
      .describe(
        "Threads that share each micro-batch on the CPU backends (wasm, cpu), each computing some of its rows with its own copy of the model: the same loss curve, up to rounding, in less time. auto: one per core, at most batch_size, and no more than the free memory holds. The cores they leave go to their products (wasm, with onnxruntime's MLAS). GPU backends use one. At most 1,024, more cores than one machine has.",
      ),
    learning_rate: z.number().positive().max(1).default(3e-4).describe('Peak learning rate of AdamW. At most 1: each step moves a weight by up to about the learning rate.'),
    schedule: z.enum(SCHEDULES).default('linear').describe('Learning-rate decay after warmup: linear to 0, cosine to 0, or constant.'),
    warmup_steps: z.number().int().min(0).max(MAX_STEPS).default(100).describe(steps('Optimizer steps of linear warmup from 0 to `learning_rate`.')),
    weight_decay: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('AdamW decoupled weight decay: each step multiplies the weights by 1 − learning_rate × weight_decay. At most 1, so that factor never turns negative.'),
    grad_clip: z
      .number()
      .positive()
      .max(1_000_000)
      .optional()
      .default(1)
      .describe('Clip the global gradient norm to this value (omit the key to keep 1.0). At most 1,000,000: a norm that large clips nothing.'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(42)
      .describe('Seeds data shuffling, adapter init and dropout: the same config and seed give the same loss curve. At most 4,294,967,295 (2³² − 1), as PyTorch and NumPy seeds.'),
    log_interval: positiveInt(MAX_STEPS).default(10).describe(steps('Optimizer steps between logged metrics.')),
    eval_interval: positiveInt(MAX_STEPS).default(100).describe(steps('Optimizer steps between evaluations.')),
    checkpoint_interval: positiveInt(MAX_STEPS).default(200).describe(steps('Optimizer steps between checkpoints.')),
    checkpoints_kept: positiveInt(1000)
      .default(2)
      .describe("Newest checkpoints kept on disk; older ones are deleted. At most 1,000: each holds the adapter and AdamW's two moments."),
    mixer_interval: positiveInt(MAX_STEPS).default(50).describe(steps('Optimizer steps between mixer snapshots for the heatmap scrubber.')),
  })
  .strict();

export const outputSchema = z
  .object({
    runs_dir: path().default('runs').describe(pathDoc('Folder that holds one folder per run, relative to this config.')),
    run_name: z
      .string()
      .max(255)
      .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only')
      .optional()
      .describe('Folder name of this run; default: the config file name and the start time. At most 255 characters, the longest file name.'),
  })
  .strict();

/**
 * The keys that choose the stored precision of the frozen base, as transformers and bitsandbytes
 * name them: in a config, and in the adapter_config.json of an adapter trained with them
 * (server/engine/adapter-files.ts), which merge and export read to measure what they cost.
 */
const basePrecisionFields = {
  torch_dtype: z
    .enum(BASE_DTYPES)
    .default('float32')
    .describe(
      "Stored precision of the frozen base, as transformers' torch_dtype: float32, or bfloat16 / float16 (half the memory, rounded to nearest even). With load_in_8bit or load_in_4bit it is the precision of what they leave unquantised: the embedding and lm_head, as bitsandbytes leaves them. Products and the adapter stay float32. On wasm and cpu the base lives outside the wasm heap; on webgpu, below float32, it stays packed on the GPU.",
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
    .min(MIN_GROUP_SIZE, { abort: true })
    .max(MAX_GROUP_SIZE, { abort: true })
    .refine(isPowerOfTwo, { error: (issue) => `must be a power of two from ${MIN_GROUP_SIZE} to ${MAX_GROUP_SIZE} (e.g. ${DEFAULT_GROUP_SIZE}), got ${String(issue.input)}` })
    .optional()
    .describe(
      "Weights per float32 scale along d_in with load_in_8bit or load_in_4bit (bitsandbytes' blocksize, GPTQ's group_size): a power of two from 16 to 1024, default 64 as bitsandbytes' 4-bit. Smaller groups are more exact and take more memory (4 bytes per group).",
    ),
};

/** The rules between the precision keys: one issue per wrong key. */
function checkBasePrecision(config: z.output<z.ZodObject<typeof basePrecisionFields>>, context: z.RefinementCtx): void {
  if (config.load_in_8bit && config.load_in_4bit) {
    context.addIssue({ code: 'custom', path: ['load_in_4bit'], message: 'load_in_8bit and load_in_4bit are both true; choose one' });
  }
  if (config.bnb_4bit_quant_type !== undefined && !config.load_in_4bit) {
    context.addIssue({ code: 'custom', path: ['bnb_4bit_quant_type'], message: 'bnb_4bit_quant_type applies with load_in_4bit: true only; set it, or remove this key' });
  }
  // a value out of bounds has its own issue, one per key
  const g = config.quant_group_size;
  if (g !== undefined && g >= MIN_GROUP_SIZE && g <= MAX_GROUP_SIZE && isPowerOfTwo(g) && !config.load_in_8bit && !config.load_in_4bit) {
    context.addIssue({ code: 'custom', path: ['quant_group_size'], message: 'quant_group_size applies with load_in_8bit or load_in_4bit only; set one, or remove this key' });
  }
}

/** The precision keys alone, with the config's defaults and rules. */
export const basePrecisionSchema = z.object(basePrecisionFields).strict().superRefine(checkBasePrecision);
/** What torch_dtype, load_in_8bit, load_in_4bit, bnb_4bit_quant_type and quant_group_size say, defaults filled. */
export type BasePrecisionKeys = z.output<typeof basePrecisionSchema>;

export const configSchema = z
  .object({
    model: path().describe(pathDoc('A Hugging Face model folder (config.json, *.safetensors, tokenizer.json), relative to this config.')),
    ...basePrecisionFields,
    method: z
      .enum(ADAPTER_METHODS)
      .default('moslora')
      .describe('lora: B·A. moslora: B·M·A with a learned r×r mixer M. moslora-fixed: M frozen. linchain: B·M_k···M_1·A.'),
    r: positiveInt(4096).default(16).describe('Adapter rank. At most 4,096: past half a module\'s width an adapter costs more than training the module itself.'),
    alpha: z
      .number()
      .positive()
      .max(16_384)
      .default(32)
      .describe('Scaling numerator: the update is scaled by alpha / r (alpha / √r with use_rslora). At most 16,384, four times the largest r (alpha / r is usually 1 to 2).'),
    dropout: z.number().min(0).lt(1).default(0.05).describe('Dropout on the adapter input while training.'),
    mixer_init: z
      .enum(MIXER_INITS)
      .default('kaiming')
      .describe('Initial mixer: kaiming (the reference code), orthogonal (keeps all r subspaces at the start), identity (starts as LoRA), zeros.'),
    chain_length: z.number().int().min(2).max(64).default(2).describe('Mixers in a linchain (method: linchain). At most 64: each is another r×r product in every step.'),
    use_rslora: z.boolean().default(false).describe('Scale by alpha / √r (rank-stabilised LoRA).'),
    use_dora: z
      .boolean()
      .default(false)
      .describe(
        "DoRA, as PEFT's use_dora, with any method: each adapted weight becomes m · (W + ΔW) / ‖W + ΔW‖, a learned magnitude m per output feature (d_out more parameters per module, starting at the norms of W) times the direction of W + ΔW. With dropout above 0, training computes the base layer's product twice, as PEFT does.",
      ),
    target_modules: z
      .union([
        z.array(z.string().min(1).max(MAX_PATTERN_LENGTH)).min(1).max(MAX_TARGET_ENTRIES),
        z
          .string()
          .min(1)
          .refine((pattern) => targetPatternProblem(pattern) === null, { error: (issue) => String(targetPatternProblem(String(issue.input))) }),
      ])
      .default([...DEFAULT_TARGET_MODULES])
      .describe(
        `Linear modules to adapt, as PEFT takes them: a list matched by name suffix (q_proj, or model.layers.0.self_attn.q_proj; c_attn for GPT-2), 'all-linear' (every linear module but lm_head), or a regular expression that matches whole module names (e.g. '.*\\.(q|v)_proj'), in RE2 syntax: no backreferences or lookaround, so matching takes linear time. At most ${MAX_TARGET_ENTRIES.toLocaleString('en-US')} entries or ${MAX_PATTERN_LENGTH} characters each.`,
      ),
    data: dataSchema,
    training: trainingSchema.prefault({}),
    output: outputSchema.prefault({}),
    backend: z.enum(BACKEND_PREFERENCES).default('auto').describe('Compute backend; auto takes the first that starts of tensorflow, webgpu, wasm, cpu.'),
  })
  .strict()
  .superRefine(checkBasePrecision);

/** What torch_dtype, load_in_8bit / load_in_4bit, bnb_4bit_quant_type and quant_group_size choose. */
export function baseFormats(config: BasePrecisionKeys): BaseFormats {
  const groupSize = config.quant_group_size ?? DEFAULT_GROUP_SIZE;
  const embedding: BaseFormat = { precision: config.torch_dtype, groupSize };
  const linear: BaseFormat = config.load_in_4bit ? { precision: config.bnb_4bit_quant_type ?? 'nf4', groupSize } : config.load_in_8bit ? { precision: 'int8', groupSize } : embedding;
  return { linear, embedding };
}

/** Every key's default: the schema applied to the smallest valid config. */
export const CONFIG_DEFAULTS: AdapterConfig = configSchema.parse({ model: '.', data: { train: '.' } });

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
