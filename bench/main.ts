// `npm run bench -- <name>`: each benchmark prints one JSON line and a readable summary, and
// appends its JSON line (with date, host and command) to bench/results/<name>.jsonl.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { BACKEND_PREFERENCES, BACKENDS, type BackendChoice, type BackendName } from '../protocol/backends';
import { describeChoice, startBackend } from '../server/runtime';
import { benchAbSchedule, type AbScheduleOptions } from './ab-schedule';
import { benchCurve } from './curve';
import { benchHost } from './host';
import { benchKernels } from './kernels';
import { benchMemory, measureStep, type MemoryCase } from './memory';
import { benchMerge } from './merge';
import { benchParallel, type ParallelOptions } from './parallel';
import { benchProducts, type ProductsOptions } from './products';
import { benchProfile } from './profile';
import { benchQuant, measurePrecision, parsePrecisions, QUANT_SHAPES } from './quant';
import { parseRecords, renderBenchReadme } from './readme';
import { benchScale, LOSS_MODELS, measureScaleStep, parseShapes, SCALE_SHAPES, scaleSummary } from './scale';
import { benchServer } from './server';
import { benchTrain } from './train';
import { benchWebgpuHost, DAWN_NULL_DEVICE } from './webgpu-host';
import { backendOption, integer } from '../server/cli/options';
import { DEFAULT_GROUP_SIZE, type BasePrecision } from '../kernels/base/quant';

function record(name: string, result: object): void {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const line = {
    ...result,
    date: new Date().toISOString(),
    host: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown CPU'}`,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
  };
  appendFileSync(join(dir, `${name}.jsonl`), `${JSON.stringify(line)}\n`);
}

/** Starts the backend, runs one benchmark, prints its JSON line and summary, and records it. */
async function runBench<T extends object>(
  name: string,
  backend: string,
  measure: (choice: BackendChoice) => Promise<T>,
  summary: (result: T) => string,
  dawnFlags: readonly string[] = [],
): Promise<void> {
  const choice = await startBackend(backendOption(backend), dawnFlags);
  console.error(describeChoice(choice));
  const result = await measure(choice);
  console.log(JSON.stringify(result));
  console.error(summary(result));
  record(name, result);
}

const program = new Command('bench').showHelpAfterError();

/** A benchmark that runs on a backend: the command with its --backend option. */
function backendCommand(name: string, description: string): Command {
  return program.command(name).description(description).option('--backend <name>', BACKEND_PREFERENCES.join(' | '), 'auto');
}

backendCommand('kernels', 'forward+backward of one adapted layer in training: MoSLoRA vs LoRA step time (goal: ratio of the fastest tenths of steps ≤ 1.03), and on webgpu MoSLoRA on the fused kernels vs as tfjs ops')
  .option('--dim <n>', 'layer width', integer('--dim', 1), 1024)
  .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
  .option('--tokens <n>', 'tokens per step', integer('--tokens', 1), 512)
  .option('--rounds <n>', 'timed rounds per method', integer('--rounds', 1), 300)
  .option('--warmup <n>', 'untimed rounds first', integer('--warmup', 0), 5)
  .action((options: { backend: string; dim: number; rank: number; tokens: number; rounds: number; warmup: number }) =>
    runBench('kernels', options.backend, (choice) => benchKernels(choice, options), (r) =>
      `fastest tenth of ${r.rounds} alternating steps: lora ${r.lora_fastest_ms} ms · moslora ${r.moslora_fastest_ms} ms · moslora/lora ${r.moslora_over_lora_fastest}\n` +
        `median: lora ${r.lora_median_ms} ms · moslora ${r.moslora_median_ms} ms · moslora/lora ${r.moslora_over_lora}` +
        (r.composite_median_ms === null
          ? ''
          : `\nmoslora as tfjs ops ${r.composite_median_ms} ms · fused/composite ${r.fused_over_composite} · dispatches a step ${r.dispatches_fused} vs ${r.dispatches_composite}`)),
  );

backendCommand('host', "a ~100M step's dropout masks (ours vs tf.randomUniform's draws: host time and time to values) and lm_head's forward product (ours vs one tf.matMul)")
  .option('--batch <n>', 'sequences of 256 tokens', integer('--batch', 1), 4)
  .option('--rounds <n>', 'timed rounds per side', integer('--rounds', 1), 3)
  .action((options: { backend: string; batch: number; rounds: number }) =>
    runBench('host', options.backend, (choice) => benchHost(choice, options), (r) =>
      [
        `${r.masks} dropout masks of a ${r.batch}×${r.tokens} step: host ${r.mask_host_ms.ours} ms (ours) vs ${r.mask_host_ms.random_uniform} ms (tf.randomUniform), ` +
          `to values ${r.mask_total_ms.ours} vs ${r.mask_total_ms.random_uniform} ms`,
        `lm_head [${r.batch * r.tokens}, 768]·[768, 32000]: ${r.lm_head_ms.ours} ms (ours) vs ${r.lm_head_ms.mat_mul} ms (tf.matMul), ` +
          `ratio ${(r.lm_head_ms.ours / r.lm_head_ms.mat_mul).toFixed(2)} (medians of ${r.rounds}, alternating)`,
      ].join('\n')),
  );

backendCommand('merge', 'merge an adapter into a ~100M Llama-shaped model vs only reading and writing its files')
  .option('--rounds <n>', 'timed rounds of each', integer('--rounds', 1), 3)
  .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
  .option('--dtype <dtype>', 'checkpoint dtype: BF16 | F16 | F32', 'BF16')
  .action((options: { backend: string; rounds: number; rank: number; dtype: string }) => {
    if (!['BF16', 'F16', 'F32'].includes(options.dtype)) throw new Error(`--dtype must be BF16, F16 or F32, got ${options.dtype}`);
    return runBench('merge', options.backend, (choice) => benchMerge(choice, { ...options, dtype: options.dtype as 'BF16' | 'F16' | 'F32' }), (r) =>
      `${(r.parameters / 1e6).toFixed(0)}M parameters, ${r.dtype}: read+write ${r.copy_median_s} s · merge ${r.merge_median_s} s · merge/copy ${r.merge_over_copy} (median of ${r.rounds}, alternating)`);
  });

/** A benchmark of the shared training workload (bench/workload.ts), with its common options. */
function workloadCommand(name: string, description: string, checkpointing: string): Command {
  return backendCommand(name, description)
    .option('--batch <n>', 'sequences per step', integer('--batch', 1), 4)
    .option('--tokens <n>', 'tokens per sequence', integer('--tokens', 1), 256)
    .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
    .option('--checkpointing', checkpointing, false);
}

workloadCommand('profile', 'where one MoSLoRA training step spends its time, by kernel, and its arithmetic rate against a large plain product', 'gradient checkpointing')
  .option('--model <folder>', 'a model folder, or 100m (a ~100M Llama-shaped model with random weights)', 'examples/tiny-model')
  .option('--steps <n>', 'timed steps before the profiled one', integer('--steps', 1), 3)
  .action((options: { backend: string; model: string; batch: number; tokens: number; rank: number; steps: number; checkpointing: boolean }) =>
    runBench('profile', options.backend, (choice) => benchProfile(choice, options), (r) =>
      [
        `${r.model}, ${r.batch}×${r.tokens} tokens on ${r.backend}: ${r.step_ms} ms/step, ${r.kernels_per_step} kernels (${r.computing_kernels_per_step} computing: on a GPU each a dispatch)`,
        `products: ${r.product_gflop} GFLOP at ${r.product_gflops} GFLOP/s (a 1024² product alone: ${r.reference_product_gflops}); whole step: ${r.step_gflops} GFLOP/s`,
        ...r.top.map((k) => `  ${k.kernel.padEnd(16)} ${String(k.ms).padStart(8)} ms ${String(k.calls).padStart(5)}× ${(100 * k.share).toFixed(1).padStart(5)}%`),
      ].join('\n')),
  );

program
  .command('webgpu-host')
  .description("the host's time of a training step on webgpu: on Dawn's null device, which computes nothing (the floor under a step's time on any GPU), with the step's dispatches, uploads and readbacks")
  .option('--model <folder>', 'a model folder, 100m (a ~100M Llama-shaped model with random weights), 100m-narrow (its layers and modules at small widths: the null device holds 512 MiB), or gpt2-narrow (GPT-2 small\'s at small widths)', 'examples/tiny-model')
  .option('--batch <n>', 'sequences per step', integer('--batch', 1), 4)
  .option('--tokens <n>', 'tokens per sequence', integer('--tokens', 1), 256)
  .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
  .option('--checkpointing', 'gradient checkpointing', false)
  .option('--steps <n>', 'timed steps (after two untimed ones)', integer('--steps', 1), 20)
  .option('--on-gpu', "on the machine's GPU instead of the null device: the step's whole time", false)
  .action((options: { model: string; batch: number; tokens: number; rank: number; checkpointing: boolean; steps: number; onGpu: boolean }) =>
    runBench(
      'webgpu-host',
      'webgpu',
      (choice) => benchWebgpuHost(choice, options),
      (r) =>
        `${r.model}, ${r.batch}×${r.tokens} tokens on webgpu (${r.device}): ${r.step_ms} ms/step${options.onGpu ? '' : ' of host time (it computes nothing)'}; ` +
        `${r.dispatches_per_step} dispatches${options.onGpu ? '' : ` (${r.us_per_dispatch} µs of host time each)`}, ${r.uploads_per_step} uploads (${r.upload_mib_per_step} MiB), ${r.readbacks_per_step} readbacks a step`,
      options.onGpu ? [] : DAWN_NULL_DEVICE,
    ),
  );

workloadCommand(
  'train',
  'tokens/s of a full MoSLoRA training step, ours vs PyTorch on the same model and batch',
  'gradient checkpointing on both sides (each layer recomputed in the backward pass)',
)
  .option('--model <which>', 'tiny (examples/tiny-model) | 100m (random Llama-shaped)', 'tiny')
  .option('--rounds <n>', 'alternating rounds', integer('--rounds', 1), 2)
  .option('--steps <n>', 'timed steps per side and round (after one warm-up step)', integer('--steps', 1), 3)
  .option('--threads <n>', 'PyTorch threads (default: all cores)', integer('--threads', 1), cpus().length)
  .option('--workers <n>', 'threads sharing our batch on a CPU backend (default: all cores, as training.workers: auto)', integer('--workers', 1), cpus().length)
  .addOption(
    new Option('--torch <impl>', "the torch side: reference (scripts/reference's Llama, Debian's python3-torch) | peft (transformers + PEFT, the mixer between lora_A and lora_B)")
      .choices(['reference', 'peft'])
      .default('reference'),
  )
  .option('--python <path>', 'the Python that has torch (and transformers + peft for --torch peft)', '/usr/bin/python3')
  .option('--torch-device <device>', 'cpu | cuda (with --torch peft)', 'cpu')
  .action(
    (options: {
      backend: string; model: string; rounds: number; steps: number; batch: number; tokens: number; rank: number; threads: number; workers: number; checkpointing: boolean;
      torch: 'reference' | 'peft'; python: string; torchDevice: string;
    }) => {
      if (options.model !== 'tiny' && options.model !== '100m') throw new Error(`--model must be tiny or 100m, got ${options.model}`);
      if (options.torchDevice !== 'cpu' && options.torch !== 'peft') throw new Error('--torch-device needs --torch peft (the reference side runs on the CPU)');
      const torch = { impl: options.torch, python: options.python, device: options.torchDevice, threads: options.threads };
      return runBench('train', options.backend, (choice) => benchTrain(choice, { ...options, model: options.model as 'tiny' | '100m', torch }), (r) =>
        `${r.model} (${(r.parameters / 1e6).toFixed(1)}M), ${r.batch}×${r.tokens} tokens: ours ${r.ours_tokens_per_s} tok/s (${r.backend}${r.ours_threads > 1 ? `, ${r.ours_threads} threads` : ''}) · ` +
        `torch ${r.torch_tokens_per_s} tok/s (${r.torch.impl}, torch ${r.torch.torch}, ${r.torch.device}${r.torch.device === 'cpu' ? `, ${r.torch_threads} threads` : ''})` +
        `${r.checkpointing ? ', both checkpointing' : ''} · ours/torch ${r.ours_over_torch}`);
    },
  );

workloadCommand('curve', "the workload's loss curve on one backend, and on a second for the first steps, same seed: they must agree", 'gradient checkpointing')
  .option('--model <folder>', 'a model folder, or 100m (a ~100M Llama-shaped model with random weights)', 'examples/tiny-model')
  .option('--steps <n>', 'steps on --backend', integer('--steps', 2), 300)
  .addOption(new Option('--compare <backend>', 'the backend to check it against').choices([...BACKENDS]).default('wasm'))
  .option('--compare-steps <n>', 'steps on --compare', integer('--compare-steps', 2), 5)
  .action((options: { backend: string; model: string; batch: number; tokens: number; rank: number; checkpointing: boolean; steps: number; compare: BackendName; compareSteps: number }) =>
    runBench('curve', options.backend, (choice) => benchCurve(choice, options), (r) =>
      [
        `${r.model}, ${r.batch}×${r.tokens} tokens: ${r.backend} (${r.device}) against ${r.compare_backend}, same seed`,
        ...r.compare_losses.slice(0, r.losses.length).map((l, i) => `  step ${String(i + 1).padStart(3)}  ${r.losses[i]!.toFixed(6)}  ${l.toFixed(6)}`),
        `largest relative difference over ${Math.min(r.losses.length, r.compare_losses.length)} steps: ${r.max_relative_difference.toExponential(2)}`,
        `loss after ${r.steps} steps on ${r.backend}: ${r.losses.at(-1)!.toFixed(4)} (from ${r.losses[0]!.toFixed(4)}); median step ${r.median_step_ms} ms (${r.compare_backend}: ${r.compare_median_step_ms} ms)`,
      ].join('\n')),
  );

program
  .command('ab-schedule')
  .description("how `moslora ab` should share the cores: a config's LoRA and MoSLoRA runs one at a time with their products on every core, side by side a core each, or one at a time with the batch split across threads")
  .option('--config <file>', 'the config both runs train', 'examples/tiny-moslora.moslora.yaml')
  .option('--rounds <n>', 'alternating rounds', integer('--rounds', 1), 2)
  .action(async (options: AbScheduleOptions) => {
    const result = await benchAbSchedule(options);
    console.log(JSON.stringify(result));
    const s = result.median_s;
    console.error(
      `two runs of ${result.config} on ${result.cores} cores (products: ${result.products}): one at a time ${s.one_at_a_time} s · side by side ${s.side_by_side} s (${result.side_by_side_over_one_at_a_time}×) · ` +
        `batch shared by threads ${s.shared_batch} s (${result.shared_batch_over_one_at_a_time}×); median of ${result.rounds} alternating rounds; load ${result.load[0]} → ${result.load[1]}`,
    );
    record('ab-schedule', result);
  });

program
  .command('server')
  .description('completion latency of the language server, idle and while a training job runs (p50/p95)')
  .option('--requests <n>', 'completion requests per phase', integer('--requests', 10), 200)
  .action(async (options: { requests: number }) => {
    const result = await benchServer(options);
    console.log(JSON.stringify(result));
    console.error(`completion p50/p95: idle ${result.idle_p50_ms}/${result.idle_p95_ms} ms · while training ${result.training_p50_ms}/${result.training_p95_ms} ms · p95 ratio ${result.training_p95_over_idle_p95}`);
    record('server', result);
  });

/** "12x4ck" → 12 layers, batch 4, gradient checkpointing. */
function memoryCases(list: string): MemoryCase[] {
  return list.split(',').map((item) => {
    const match = /^(\d+)x(\d+)(ck)?$/.exec(item.trim());
    if (!match) throw new Error(`--cases: "${item}" is not <layers>x<batch>[ck], e.g. 12x4ck`);
    return { layers: Number(match[1]), batch: Number(match[2]), checkpointing: match[3] === 'ck' };
  });
}

program
  .command('memory')
  .description("wasm heap high-water mark of one training step of a ~100M Llama, against the language server's memory estimate")
  .option('--cases <list>', '<layers>x<batch>[ck] (ck: gradient checkpointing), comma-separated', '12x1,12x2,12x2ck,12x4ck,12x8ck,4x4ck')
  .option('--step <json>', '(internal) measure one case in this process')
  .action(async (options: { cases: string; step?: string }) => {
    if (options.step) {
      const { dir, ...c } = JSON.parse(options.step) as MemoryCase & { dir: string };
      await startBackend(backendOption('wasm'));
      console.log(JSON.stringify(await measureStep(dir, c)));
      return;
    }
    const result = await benchMemory(memoryCases(options.cases));
    console.log(JSON.stringify(result));
    for (const c of result.cases) {
      console.error(`${c.layers} layers, batch ${c.batch}×${result.tokens}${c.checkpointing ? ', checkpointing' : ''}: heap ${c.heap_gib === null ? 'aborted (over 4 GiB)' : `${c.heap_gib} GiB`} · estimate ${c.estimate_gib} GiB`);
    }
    record('memory', result);
  });

workloadCommand('parallel', 'data-parallel training as the engine runs it: the batch in this thread alone vs split across threads (one wasm backend each)', 'gradient checkpointing')
  .option('--model <folder>', 'a model folder, or 100m (a ~100M Llama-shaped model with random weights)', 'examples/tiny-model')
  .option('--threads <n>', 'threads to split the batch across (this one and n − 1 workers)', integer('--threads', 2), Math.max(2, cpus().length))
  .option('--steps <n>', 'timed steps per side and round (after one warm-up step)', integer('--steps', 1), 3)
  .option('--rounds <n>', 'alternating rounds', integer('--rounds', 1), 2)
  .action((options: ParallelOptions & { backend: string }) => {
    if (!['auto', 'wasm', 'cpu'].includes(options.backend)) throw new Error('parallel measures the CPU backends (wasm, cpu): threads split the batch across cores');
    return runBench('parallel', options.backend, (choice) => benchParallel(choice.backend, options), (r) =>
      `${r.model}, ${r.batch}×${r.tokens} tokens${r.checkpointing ? ', checkpointing' : ''} on ${r.backend}: one thread ${r.one_thread_ms} ms/step · ` +
        `${r.threads} threads ${r.threads_ms} ms/step · speedup ${r.speedup} (median of ${r.rounds} × ${r.steps} steps, alternating) · losses agree to ${r.max_loss_rel_diff}`);
  });

workloadCommand('products', "the wasm backend's products on MLAS (onnxruntime's native GEMM) vs XNNPACK (tfjs-backend-wasm's own): a training step in one thread with each, alternating", 'gradient checkpointing')
  .option('--model <folder>', 'a model folder, or 100m (a ~100M Llama-shaped model with random weights)', 'examples/tiny-model')
  .option('--steps <n>', 'timed steps per side and round (after one warm-up step)', integer('--steps', 1), 3)
  .option('--rounds <n>', 'alternating rounds', integer('--rounds', 1), 2)
  .option('--product-threads <n>', "threads each of MLAS's products takes", integer('--product-threads', 1), 1)
  .action((options: ProductsOptions & { backend: string }) =>
    runBench('products', options.backend === 'auto' ? 'wasm' : options.backend, (choice) => benchProducts(choice.backend, choice.device, options), (r) =>
      `${r.model}, ${r.batch}×${r.tokens} tokens${r.checkpointing ? ', checkpointing' : ''}, one thread: MLAS ${r.mlas_ms} ms/step (${r.mlas_products_per_step} products on ${r.product_threads} thread${r.product_threads > 1 ? 's' : ''}) · ` +
        `XNNPACK ${r.xnnpack_ms} ms/step · speedup ${r.speedup} (median of ${r.rounds} × ${r.steps} steps, alternating) · losses agree to ${r.max_loss_rel_diff}`),
  );

program
  .command('quant')
  .description("the frozen base in the native weight store at each precision, for a real model's linear weights and embedding (random BF16 checkpoint): stored bytes, resident memory, wasm heap, load time, products vs today's float32 in the heap, quantisation error")
  .option('--shape <name>', Object.keys(QUANT_SHAPES).join(' | '), 'qwen2.5-1.5b')
  .option('--precisions <list>', 'comma-separated', 'float32,bfloat16,float16,int8,int4,nf4')
  .option('--group-size <n>', 'weights per scale (int8, int4, nf4)', integer('--group-size', 16), DEFAULT_GROUP_SIZE)
  .option('--tokens <n>', 'rows of the products timed', integer('--tokens', 1), 256)
  .option('--rounds <n>', 'timed rounds of each product (alternating)', integer('--rounds', 1), 5)
  .option('--model <folder>', 'where the checkpoint is: reused if written there earlier (same shape), else written there and kept (default: a scratch folder, removed)')
  .option('--one <json>', '(internal) measure one precision in this process')
  .action(async (options: { shape: string; precisions: string; groupSize: number; tokens: number; rounds: number; model?: string; one?: string }) => {
    if (options.one) {
      const { dir, shape, precision, ...rest } = JSON.parse(options.one) as { dir: string; shape: string; precision: BasePrecision; groupSize: number; tokens: number; rounds: number };
      await startBackend(backendOption('wasm'));
      console.log(JSON.stringify(await measurePrecision(dir, shape, precision, rest)));
      return;
    }
    const result = await benchQuant({ ...options, precisions: parsePrecisions(options.precisions) });
    console.log(JSON.stringify(result));
    for (const p of result.precisions) {
      console.error(
        `${p.precision.padEnd(8)}${p.group_size ? ` g${p.group_size}` : '    '}: stored ${p.stored_gib} GiB · RSS ${p.rss_before_gib} → ${p.rss_after_gib} GiB (peak ${p.rss_peak_gib}) · heap ${p.heap_mib} MiB · load ${p.load_s} s · ` +
          `products ours/today ${p.time_ratio} · weight error ${p.modules[2]!.weight_rel_rms_error} · output error ${p.modules[2]!.output_rel_rms_error} (up_proj)`,
      );
    }
    console.error(`(load average ${result.load_average[0]} → ${result.load_average[1]}: the machine was shared)`);
    record('quant', result);
  });

program
  .command('scale')
  .description(
    "real model sizes: random BF16 checkpoints in the shapes of Qwen2.5-0.5B, 1.5B, 3B and Llama-3.1-8B at each stored precision of the base on wasm: whether the engine lets the run start (its refusal and estimate), load time, peak RSS and a MoSLoRA step's time at 1 × 256 tokens with checkpointing; and the loss gap of 8- and 4-bit against float32 on the tiny task, with the tiny model or a ~100M one",
  )
  .option('--shapes <list>', `comma-separated: ${Object.keys(SCALE_SHAPES).join(', ')}, or none`, Object.keys(SCALE_SHAPES).join(','))
  .option('--precisions <list>', 'comma-separated', 'float32,bfloat16,int8,nf4')
  .option('--model-dir <folder>', 'a folder of checkpoints, one per shape: reused if written there earlier, else written there and kept (default: scratch folders, removed)')
  .option('--steps <n>', 'timed training steps of each run', integer('--steps', 1), 1)
  .option('--loss-steps <n>', 'steps of the loss gap (0: none)', integer('--loss-steps', 0), 60)
  .option('--loss-precisions <list>', 'comma-separated, float32 among them', 'float32,bfloat16,int8,int4,nf4')
  .option('--loss-model <name>', `the loss gap's model: ${LOSS_MODELS.join(' (examples/tiny-model) or ')} (random weights, the tiny model's tokenizer)`, 'tiny')
  .option('--loss-batch <n>', "the loss gap's sequences a step (default: the config's training.batch_size)", integer('--loss-batch', 1))
  .option('--loss-seeds <n>', "seeds of the loss gap, from the config's on: each precision's difference from float32 is paired by seed, with its 95% interval", integer('--loss-seeds', 1), 1)
  .option('--one <json>', '(internal) measure one precision of one checkpoint in this process')
  .action(async (options: { shapes: string; precisions: string; modelDir?: string; steps: number; lossSteps: number; lossPrecisions: string; lossModel: string; lossBatch?: number; lossSeeds: number; one?: string }) => {
    if (options.one) {
      const { dir, precision, steps } = JSON.parse(options.one) as { dir: string; precision: BasePrecision; steps: number };
      await startBackend(backendOption('wasm'));
      console.log(JSON.stringify(await measureScaleStep(dir, precision, steps)));
      return;
    }
    const lossPrecisions = parsePrecisions(options.lossPrecisions);
    if (options.lossSteps > 0 && !lossPrecisions.includes('float32')) throw new Error('--loss-precisions: the loss gap is against float32; list float32 among them');
    const lossModel = LOSS_MODELS.find((name) => name === options.lossModel);
    if (!lossModel) throw new Error(`--loss-model: "${options.lossModel}" is not one of ${LOSS_MODELS.join(', ')}`);
    const result = await benchScale(
      { shapes: parseShapes(options.shapes), precisions: parsePrecisions(options.precisions), ...(options.modelDir ? { modelDir: options.modelDir } : {}), steps: options.steps, lossSteps: options.lossSteps, lossPrecisions, lossModel, lossSeeds: options.lossSeeds, ...(options.lossBatch === undefined ? {} : { lossBatch: options.lossBatch }) },
      (one) => [...process.execArgv, process.argv[1]!, 'scale', '--one', one],
    );
    console.log(JSON.stringify(result));
    console.error(scaleSummary(result));
    record('scale', result);
  });

program
  .command('readme')
  .description('write bench/README.md from bench/results/*.jsonl (measures nothing)')
  .option('--check', 'only check that bench/README.md is what the records give; exit 1 if not')
  .action((options: { check?: boolean }) => {
    const dir = join(process.cwd(), 'bench', 'results');
    const records = new Map(
      readdirSync(dir)
        .filter((file) => file.endsWith('.jsonl'))
        .map((file) => [file.replace(/\.jsonl$/, ''), parseRecords(join('bench', 'results', file), readFileSync(join(dir, file), 'utf8'))] as const),
    );
    const descriptions = new Map(program.commands.filter((c) => c.name() !== 'readme').map((c) => [c.name(), c.description()] as const));
    const page = renderBenchReadme(records, descriptions);
    const file = join(process.cwd(), 'bench', 'README.md');
    if (!options.check) {
      writeFileSync(file, page);
      console.error(`wrote ${file} from ${[...records.values()].reduce((n, r) => n + r.length, 0)} records`);
    } else if ((existsSync(file) ? readFileSync(file, 'utf8') : '') !== page) {
      throw new Error('bench/README.md is not what bench/results/*.jsonl give: run `npm run bench -- readme`');
    }
  });

program.parseAsync().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
