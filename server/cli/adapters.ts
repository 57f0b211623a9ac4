// `moslora export`, `moslora combine` and `moslora convert`: adapter folders in, adapter folders
// out; no model needed (export reads the base model only to measure what a quantised base cost).
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startBackend } from '../runtime';
import {
  ADAPTER_TORCH_FILE,
  ADAPTER_WEIGHTS_FILE,
  convertTorchAdapter,
  exportPeft,
  recordedBaseModelDir,
  saveAdapter,
  type AdapterSettings,
} from '../engine/adapter-files';
import { checkFiniteAdapter } from '../engine/adapter-checks';
import { quantisationCost } from '../engine/merge';
import { COMBINE_METHODS, combineAdapters, type CombineMethod } from '../engine/combine';
import { checkOutputFolder, writeOutputFolder } from '../engine/outputs';
import { loadAdapterWithNotes } from './load-adapter';
import { integer, numberList } from './options';
import { printJson, printResult } from './result';
import { describeQuantisationCost } from '../../protocol/cli';

export function registerAdapterCommands(program: Command): void {
  program
    .command('export')
    .description('write an adapter as plain LoRA in the PEFT layout (A′ = M·A, exact), loadable by stock PEFT')
    .argument('<adapter>', `adapter folder (adapter_config.json + ${ADAPTER_WEIGHTS_FILE} or ${ADAPTER_TORCH_FILE}), e.g. runs/NAME/adapter`)
    .requiredOption('--out <dir>', 'output folder')
    .option('--peft', 'the PEFT LoRA layout (the only export format, on by default)')
    .option('--model <dir>', 'base model folder, to name it for PEFT and to measure what a quantised base cost (default: the one the adapter records)')
    .option('--force', 'replace --out if it is a folder moslora wrote (an earlier export)')
    .option('--json', 'print JSON {outDir, modules, quantisation}')
    .action(async (adapterDir: string, options: { out: string; model?: string; force?: boolean; json?: boolean }) => {
      const out = resolve(options.out);
      await checkOutputFolder('export', out, [{ what: 'adapter', path: resolve(adapterDir) }], options.force === true);
      await startBackend('cpu');
      const { settings, adapters } = await loadAdapterWithNotes(adapterDir);
      await checkFiniteAdapter(resolve(adapterDir), adapters);
      const baseDir = options.model ? resolve(options.model) : settings.baseModel ? recordedBaseModelDir(adapterDir, settings.baseModel) : undefined;
      const base = await writeOutputFolder('export', out, (dir) => exportPeft(dir, adapters, settings, baseDir));
      const naming = `base_model_name_or_path: ${JSON.stringify(base.name)}, ${base.source}`;
      const quantisation = await quantisationCost(baseDir, adapters, settings.basePrecision);
      if (options.json) {
        console.error(`note: ${naming}`);
        printResult('export', { outDir: out, modules: adapters.size, quantisation });
      } else {
        console.log(`exported ${adapters.size} modules of a ${settings.method} adapter as plain LoRA to ${options.out}`);
        console.log(naming);
        console.log(describeQuantisationCost(quantisation));
      }
    });

  program
    .command('convert')
    .description(`write an adapter saved by torch.save (${ADAPTER_TORCH_FILE}) as ${ADAPTER_WEIGHTS_FILE} beside it: the same tensors, names and dtypes`)
    .argument('<adapter>', `adapter folder holding adapter_config.json and ${ADAPTER_TORCH_FILE}`)
    .option('--force', `replace an existing ${ADAPTER_WEIGHTS_FILE}`)
    .option('--json', 'print JSON {file, tensors}')
    .action(async (adapterDir: string, options: { force?: boolean; json?: boolean }) => {
      await startBackend('cpu');
      const result = await convertTorchAdapter(resolve(adapterDir), options.force ? { overwrite: true } : {});
      for (const note of result.notes) console.error(`note: ${note}`);
      if (options.json) printJson({ file: result.file, tensors: result.tensors });
      else console.log(`wrote ${result.tensors} tensors to ${result.file}; ${ADAPTER_TORCH_FILE} is left as it was`);
    });

  program
    .command('combine')
    .description('combine adapters of one base model: cat (exact, ranks add), linear or svd (from the full ΔW)')
    .argument('<adapters...>', 'two or more adapter folders')
    .requiredOption('--out <dir>', 'output folder')
    .option('--method <method>', COMBINE_METHODS.join(' | '), (value: string) => {
      if (!(COMBINE_METHODS as readonly string[]).includes(value)) throw new InvalidArgumentError(`allowed: ${COMBINE_METHODS.join(', ')}`);
      return value as CombineMethod;
    }, 'cat')
    .option('--weights <w1,w2,...>', 'one weight per adapter (default: 1 each)', numberList)
    .option('--rank <n>', 'rank of the result (svd)', integer('--rank', 1))
    .option('--force', 'replace --out if it is a folder moslora wrote (an earlier combine)')
    .option('--json', 'print JSON {outDir, modules, rank, relativeError}')
    .action(async (dirs: string[], options: { out: string; method: CombineMethod; weights?: number[]; rank?: number; force?: boolean; json?: boolean }) => {
      if (dirs.length < 2) throw new Error('combine: give at least two adapter folders');
      if (options.weights && options.weights.length !== dirs.length) {
        throw new Error(`combine: --weights has ${options.weights.length} values for ${dirs.length} adapters`);
      }
      const out = resolve(options.out);
      await checkOutputFolder('combine', out, dirs.map((dir) => ({ what: 'adapter', path: resolve(dir) })), options.force === true);
      await startBackend('cpu');
      const loaded = await Promise.all(dirs.map((dir) => loadAdapterWithNotes(dir)));
      for (const [i, { adapters }] of loaded.entries()) await checkFiniteAdapter(resolve(dirs[i]!), adapters);
      const bases = new Set(loaded.map((l) => l.settings.baseModel));
      if (bases.size > 1) console.warn(`warning: the adapters name different base models (${[...bases].join(', ')}); combining them only makes sense for one base`);
      const { adapters, reports } = combineAdapters(
        loaded.map((l, i) => ({ adapters: l.adapters, weight: options.weights?.[i] ?? 1 })),
        options.method,
        options.rank === undefined ? {} : { rank: options.rank },
      );
      const { basePrecision, ...first } = loaded[0]!.settings;
      const precisions = new Set(loaded.map((l) => JSON.stringify(l.settings.basePrecision ?? null)));
      if (precisions.size > 1) console.warn(`warning: the adapters trained on bases of different stored precisions (${[...precisions].join(', ')}); the combined adapter records none`);
      const r = Math.max(...reports.map((report) => report.rank));
      const settings: AdapterSettings = {
        ...first,
        ...(basePrecision && precisions.size === 1 ? { basePrecision } : {}),
        method: [...adapters.values()].some((a) => a.spec.method !== 'lora') ? 'moslora' : 'lora',
        r,
        alpha: r,
        dropout: 0,
        mixerInit: 'identity',
        targetModules: [...new Set(loaded.flatMap((l) => l.settings.targetModules))],
        fanInFanOut: loaded.some((l) => l.settings.fanInFanOut),
      };
      await writeOutputFolder('combine', out, (dir) => saveAdapter(dir, adapters, settings));
      const worst = Math.max(...reports.map((report) => report.relativeError));
      if (options.json) {
        printResult('combine', { outDir: out, modules: adapters.size, rank: r, relativeError: worst });
        return;
      }
      console.log(`combined ${dirs.length} adapters (${options.method}) into ${options.out}: ${adapters.size} modules, rank ${r}, largest relative error ${worst.toExponential(2)}`);
    });
}
