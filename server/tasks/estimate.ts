// "Estimate" on a config: what it would train and for how long, without loading any weights.
// Parameters come from the checkpoint's safetensors headers (the same counts as the hover on `r`);
// steps from the number of training examples, as the trainer computes them.
import { ConfigError, loadConfigFile, parseConfigText, resolveConfigPaths } from '../config/load';
import { readRecords } from '../engine/data';
import { baseMemory, describeTargets, targetedModules, type FactCache } from '../lsp/facts';
import { parameterCounts, trainableCount } from '../lsp/hover';
import type { EstimateReport } from '../../protocol/editor';
import { baseFormats } from '../config/schema';

/** `text`: the config as open in the editor (unsaved edits count); else the file is read. */
export async function estimateConfig(configPath: string, facts: FactCache, text?: string): Promise<EstimateReport> {
  const config = text === undefined ? await loadConfigFile(configPath) : fromText(configPath, text);
  const model = await facts.model(config.model);
  if (!model.ok) throw new Error(`${configPath}: model: ${model.problem}`);
  const modules = targetedModules(model.modules, config.target_modules);
  if (modules.length === 0) {
    throw new Error(`${configPath}: target_modules (${describeTargets(config.target_modules)}) match no linear module of ${config.model}`);
  }
  const counts = parameterCounts(modules, config.r, config.chain_length);
  const trainable = trainableCount(counts, config.method, config.use_dora);
  const formats = baseFormats(config);

  const records = (await readRecords(config.data.train)).length;
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
  if (config.data.packing && t.max_steps === undefined) {
    report.note = `packing joins examples into ${config.data.max_length}-token rows, so the run takes at most ${totalSteps} steps (fewer rows than examples)`;
  }
  return report;
}

function fromText(configPath: string, text: string) {
  const { config, issues } = parseConfigText(text, configPath);
  if (!config) throw new ConfigError(configPath, issues.filter((issue) => issue.severity === 'error'));
  return resolveConfigPaths(config, configPath);
}
