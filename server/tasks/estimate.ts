// "Estimate" on a config: what it would train and for how long, without loading any weights.
// Parameters come from the checkpoint's safetensors headers (the same counts as the hover on `r`);
// steps from the number of training examples, as the trainer computes them. Every refusal is one
// line, and none quotes a file the config names: that file may be anyone's.
import type { FileHandle } from 'node:fs/promises';
import { DatasetError, readRecords } from '../engine/data';
import { baseMemory, describeTargets, targetedModules, type FactCache } from '../lsp/facts';
import { parameterCounts, trainableCount } from '../lsp/hover';
import { FileReadError, formatSize, openRegularFile } from '../formats/files';
import type { EstimateReport } from '../../protocol/editor';
import { baseFormats } from '../config/schema';
import { loadTaskConfig } from './config';

/** Datasets up to this size are read as the trainer reads them; a larger .jsonl has its lines counted. */
const MAX_READ_BYTES = 64 * 1024 ** 2;

/** `text`: the config as open in the editor (unsaved edits count); else the file is read. */
export async function estimateConfig(configPath: string, facts: FactCache, text?: string): Promise<EstimateReport> {
  const config = await loadTaskConfig(configPath, text);
  const model = await facts.model(config.model);
  if (!model.ok) throw new Error(`${configPath}: model: ${model.problem}`);
  const modules = targetedModules(model.modules, config.target_modules);
  if (modules.length === 0) {
    throw new Error(`${configPath}: target_modules (${describeTargets(config.target_modules)}) match no linear module of ${config.model}`);
  }
  const counts = parameterCounts(modules, config.r, config.chain_length);
  const trainable = trainableCount(counts, config.method, config.use_dora);
  const formats = baseFormats(config);

  const { count: records, counted } = await countExamples(configPath, config.data.train);
  // as splitExamples: round(n · share), at least one, held out when there is no eval file
  const held = config.data.eval === undefined && config.data.eval_split > 0 ? Math.max(1, Math.round(records * config.data.eval_split)) : 0;
  const trainExamples = records - held;
  const t = config.training;
  const batchesPerEpoch = Math.ceil(trainExamples / t.batch_size);
  const totalSteps = t.max_steps ?? Math.max(1, Math.ceil((t.epochs * batchesPerEpoch) / t.gradient_accumulation));
  const report: EstimateReport = {
    configPath: config.configPath,
    model: config.model,
    architecture: model.architecture,
    method: config.method,
    r: config.r,
    modules: counts.modules,
    baseParameters: model.totalParameters,
    lora: counts.lora,
    moslora: counts.moslora,
    trainable,
    ...(config.use_dora ? { magnitudes: counts.magnitudes } : {}),
    trainExamples,
    batchSize: t.batch_size,
    gradientAccumulation: t.gradient_accumulation,
    totalSteps,
    ...(model.layout && baseMemory(model.layout, formats)),
  };
  const notes = [
    ...(counted ? [`${config.data.train} is ${counted}: its non-empty lines are counted as examples, unchecked`] : []),
    ...(config.data.packing && t.max_steps === undefined ? [`packing joins examples into ${config.data.max_length}-token rows, so the run takes at most ${totalSteps} steps (fewer rows than examples)`] : []),
  ];
  if (notes.length) report.note = notes.join('; ');
  return report;
}

/**
 * The training file's examples: read and checked as the trainer does, or for a .jsonl over
 * MAX_READ_BYTES its non-empty lines counted (`counted` says its size). Only a regular file is
 * opened. A problem is named by its line, not quoted.
 */
async function countExamples(configPath: string, file: string): Promise<{ count: number; counted?: string }> {
  const where = `${configPath}: data.train`;
  let handle: FileHandle;
  try {
    handle = await openRegularFile(file, 'the dataset');
  } catch (error) {
    if (error instanceof FileReadError) throw new Error(`${where}: ${error.message}`);
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size > MAX_READ_BYTES) {
      if (file.endsWith('.json')) throw new Error(`${where}: ${file} is ${formatSize(size)}, more than the ${formatSize(MAX_READ_BYTES)} the estimate reads of a .json array; write it as .jsonl, or let training count it`);
      return { count: await nonEmptyLines(handle), counted: formatSize(size) };
    }
  } finally {
    await handle.close();
  }
  try {
    return { count: (await readRecords(file)).length };
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    const [first = ''] = error.problems;
    const line = first.startsWith(`${file}:`) ? /^:(\d+):/.exec(first.slice(file.length))?.[1] : undefined;
    const what = first
      .slice(file.length)
      .replace(/^(:\d+)?: /, '')
      .replace(/^(invalid JSON) \(.*\)$/s, '$1')
      .replace(/^(expected a JSON object), got .*$/s, '$1');
    const more = error.problems.length > 1 ? ` (and ${error.problems.length - 1} more)` : '';
    throw new Error(`${where}: ${file}${line ? ` line ${line}` : ''}: ${what}${more}`);
  }
}

/** Lines holding more than white space, read in chunks: a large file is never held whole. */
async function nonEmptyLines(handle: FileHandle): Promise<number> {
  const buffer = Buffer.alloc(1 << 20);
  let lines = 0;
  let content = false;
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    for (let i = 0; i < bytesRead; i++) {
      const byte = buffer[i]!;
      if (byte === 0x0a) {
        if (content) lines++;
        content = false;
      } else if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) content = true;
    }
  }
  return content ? lines + 1 : lines;
}
