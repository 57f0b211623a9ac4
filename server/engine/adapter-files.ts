// Adapter folders in the PEFT layout:
//   adapter_model.safetensors   base_model.model.<module>.lora_A.weight  [r, d_in]
//                               base_model.model.<module>.lora_B.weight  [d_out, r]
//                               base_model.model.<module>.lora_AB.weight [r, r]   (the mixer, named
//                               as in the reference MoSLoRA code; a linchain stores lora_AB.<i>.weight,
//                               M_1 first)
//                               base_model.model.<module>.lora_magnitude_vector [d_out]  (DoRA's
//                               magnitude, PEFT's key: no ".weight"; "use_dora": true in the config)
//   adapter_config.json         PEFT's LoraConfig fields; the native adapter adds "lora_use_mixer"
//                               (as the reference code) and a "moslora" block with the method and
//                               "base_precision": the config keys (torch_dtype, load_in_8bit, …)
//                               the frozen base was stored at while the adapter trained.
//   adapter_model.bin           read where there is no .safetensors: the same tensors as torch.save
//                               writes them (the reference code saves this), read without pickle's code.
// Every tensor of the file is used, or loading fails naming the rest: an adapter never loads with
// part of it dropped.
// `exportPeft` folds the mixers in (A′ = M·A) and writes only what stock PEFT reads, so any
// PEFT-style tool loads a MoSLoRA adapter as a plain LoRA adapter (a DoRA one as LoRA with DoRA:
// the fold leaves ΔW, hence ‖W + ΔW‖, as it was).
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { MIXER_INITS, mixerCount, resolveAdapterSpec, type MixerInit, type ResolvedAdapterSpec } from '../../kernels/adapter/spec';
import { checkAdapterShapes, type Adapter } from '../../kernels/adapter/linear';
import { foldToLora } from '../../kernels/adapter/merge';
import { disposeAdapterWeights } from '../../kernels/adapter/init';
import { readValues } from '../../kernels/backends/read';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../formats/safetensors';
import { TorchCheckpoint } from '../formats/torch-checkpoint';
import { ADAPTER_METHODS, type AdapterMethod } from '../../protocol/methods';
import { basePrecisionSchema, type BasePrecisionKeys } from '../config/schema';
import { DEFAULT_GROUP_SIZE } from '../../kernels/base/quant';

export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PyTorch's format: what the reference MoSLoRA code (a PEFT fork) writes with torch.save. */
export const ADAPTER_TORCH_FILE = 'adapter_model.bin';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
const PREFIX = 'base_model.model.';

/** What an adapter folder says about how it was made. */
export interface AdapterSettings {
  baseModel: string;
  method: AdapterMethod;
  r: number;
  alpha: number;
  dropout: number;
  useRslora: boolean;
  /** DoRA (PEFT's use_dora): each module also has a magnitude vector. Absent: false. */
  useDora?: boolean;
  mixerInit: MixerInit;
  chainLength: number;
  targetModules: string[];
  /** True when the base stores these weights [in, out] (GPT-2 Conv1D), as PEFT's fan_in_fan_out. */
  fanInFanOut: boolean;
  /** Read from PEFT's rank_pattern / alpha_pattern; written from the modules' own specs. */
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
  /**
   * The stored precision of the frozen base while the adapter trained (the config's torch_dtype,
   * load_in_8bit, …), which merge and export measure the cost of. Absent: not recorded (an
   * adapter from elsewhere, or saved before adapters recorded it), read as float32.
   */
  basePrecision?: BasePrecisionKeys;
}

/** The precision keys as adapter_config.json records them: each key that applies, its default written out. */
function precisionRecord(keys: BasePrecisionKeys): Record<string, unknown> {
  const quantised = keys.load_in_8bit || keys.load_in_4bit;
  return {
    torch_dtype: keys.torch_dtype,
    ...(keys.load_in_8bit ? { load_in_8bit: true } : {}),
    ...(keys.load_in_4bit ? { load_in_4bit: true, bnb_4bit_quant_type: keys.bnb_4bit_quant_type ?? 'nf4' } : {}),
    ...(quantised ? { quant_group_size: keys.quant_group_size ?? DEFAULT_GROUP_SIZE } : {}),
  };
}

/** PEFT's lookup: an exact module name, else the longest key the module name ends with. */
function patternValue(pattern: Record<string, number> | undefined, module: string): number | undefined {
  if (!pattern) return undefined;
  if (module in pattern) return pattern[module];
  const key = Object.keys(pattern)
    .filter((k) => module.endsWith(`.${k}`))
    .sort((a, b) => b.length - a.length)[0];
  return key === undefined ? undefined : pattern[key];
}

function mixerKey(module: string, index: number, count: number): string {
  return count === 1 ? `${PREFIX}${module}.lora_AB.weight` : `${PREFIX}${module}.lora_AB.${index}.weight`;
}

/** PEFT saves DoRA's magnitude without the ".weight" its module's parameter has in memory (and reads either). */
function magnitudeKey(module: string): string {
  return `${PREFIX}${module}.lora_magnitude_vector`;
}

async function tensorsOf(adapters: ReadonlyMap<string, Adapter>, fold: boolean): Promise<TensorToWrite[]> {
  const out: TensorToWrite[] = [];
  const write = async (name: string, t: tf.Tensor) => out.push({ name, dtype: 'F32', shape: t.shape, data: (await readValues(t)) as Float32Array });
  for (const [module, { spec, weights }] of adapters) {
    checkAdapterShapes(spec, weights);
    const plain = fold ? foldToLora(weights) : { A: weights.A, B: weights.B };
    await write(`${PREFIX}${module}.lora_A.weight`, plain.A);
    await write(`${PREFIX}${module}.lora_B.weight`, plain.B);
    if (fold) tf.dispose([plain.A, plain.B]);
    else {
      for (const [i, m] of weights.mixers.entries()) await write(mixerKey(module, i, weights.mixers.length), m);
    }
    if (weights.magnitude) await write(magnitudeKey(module), weights.magnitude);
  }
  return out;
}

/** PEFT's per-module overrides, for modules whose rank or alpha differ from the adapter-wide values. */
function patterns(adapters: ReadonlyMap<string, Adapter>, settings: AdapterSettings) {
  const rank: Record<string, number> = {};
  const alpha: Record<string, number> = {};
  for (const [module, { spec }] of adapters) {
    if (spec.r !== settings.r) rank[module] = spec.r;
    if (spec.alpha !== settings.alpha) alpha[module] = spec.alpha;
  }
  return { rank_pattern: rank, alpha_pattern: alpha };
}

function peftConfig(settings: AdapterSettings, adapters: ReadonlyMap<string, Adapter>): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: settings.baseModel,
    r: settings.r,
    lora_alpha: settings.alpha,
    lora_dropout: settings.dropout,
    use_rslora: settings.useRslora,
    target_modules: settings.targetModules,
    fan_in_fan_out: settings.fanInFanOut,
    bias: 'none',
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    ...patterns(adapters, settings),
    use_dora: settings.useDora ?? false,
    revision: null,
  };
}

/** The native adapter, mixers included. */
export async function saveAdapter(dir: string, adapters: ReadonlyMap<string, Adapter>, settings: AdapterSettings): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), await tensorsOf(adapters, false), { format: 'pt' });
  const config = {
    ...peftConfig(settings, adapters),
    lora_use_mixer: settings.method !== 'lora',
    moslora: {
      method: settings.method,
      mixer_init: settings.mixerInit,
      chain_length: settings.chainLength,
      ...(settings.basePrecision ? { base_precision: precisionRecord(settings.basePrecision) } : {}),
    },
  };
  await writeFile(join(dir, ADAPTER_CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
}

/** A base model as the PEFT export names it (`base_model_name_or_path`), and where the name comes from. */
export interface PeftBaseModel {
  name: string;
  source: string;
}

// huggingface_hub's rule for a repo id: [namespace/]name, letters, digits, "-", "_", ".", no "--" or "..".
const HUB_ID = /^(?:[A-Za-z0-9][\w.-]{0,95}\/)?[A-Za-z0-9][\w.-]{0,95}$/;
// The Hugging Face cache keeps a model under models--<namespace>--<name>/snapshots/<revision>.
const HUB_CACHE_SNAPSHOT = /(?:^|[\\/])models--([\w.-]+?)(?:--([\w.-]+))?[\\/]snapshots[\\/][^\\/]+[\\/]?$/;

function isHubId(value: string): boolean {
  return HUB_ID.test(value) && !value.includes('--') && !value.includes('..') && !value.endsWith('.git');
}

/**
 * What a PEFT export writes as `base_model_name_or_path`. A local path breaks on every other
 * machine (AutoPeftModel* loads the base from it), so: the model's hub id where its config.json
 * (`_name_or_path`) or its folder (a Hugging Face cache snapshot) says it; else the recorded value
 * when it is a hub id; else the folder's name. `dir` is where `recorded` is on this machine.
 */
export async function peftBaseModel(recorded: string, dir?: string): Promise<PeftBaseModel> {
  if (!recorded) return { name: '', source: 'the adapter records no base model' };
  const config = dir
    ? await readFile(join(dir, 'config.json'), 'utf8')
        .then((text) => JSON.parse(text) as unknown)
        .catch(() => undefined)
    : undefined;
  const named = config !== null && typeof config === 'object' ? (config as Record<string, unknown>)._name_or_path : undefined;
  if (typeof named === 'string' && isHubId(named)) return { name: named, source: `the hub id in ${join(dir!, 'config.json')} (_name_or_path)` };
  const cached = dir ? HUB_CACHE_SNAPSHOT.exec(resolve(dir)) : null;
  if (cached) return { name: cached[2] ? `${cached[1]}/${cached[2]}` : cached[1]!, source: `the hub id of the Hugging Face cache folder ${dir}` };
  if (isHubId(recorded) && !recorded.startsWith('.')) return { name: recorded, source: 'the hub id the adapter records' };
  const folder = dir ?? recorded;
  return {
    name: basename(folder.replace(/[\\/]+$/, '')),
    source:
      `the name of the base model folder ${folder}${config === undefined ? ' (no config.json read there)' : ', whose config.json names no hub id'}; ` +
      'to have PEFT load the base from the Hub, put its id in adapter_config.json',
  };
}

/** The base model folder an adapter's config records, on this machine: relative to the folder that holds the adapter. */
export function recordedBaseModelDir(adapterDir: string, recorded: string): string {
  return resolve(dirname(resolve(adapterDir)), recorded);
}

/**
 * A plain LoRA adapter that stock PEFT loads: A′ = M·A, B′ = B, the same scaling. Its
 * target_modules are exactly the modules it holds, so PEFT attaches LoRA to no module the file
 * has no weights for (GPT-2's `c_proj` names both attn.c_proj and mlp.c_proj). `baseModelDir` is
 * where the base model is on this machine, to name it (`peftBaseModel`).
 */
export async function exportPeft(dir: string, adapters: ReadonlyMap<string, Adapter>, settings: AdapterSettings, baseModelDir?: string): Promise<PeftBaseModel> {
  const base = await peftBaseModel(settings.baseModel, baseModelDir);
  const exported: AdapterSettings = { ...settings, baseModel: base.name, targetModules: [...adapters.keys()] };
  await mkdir(dir, { recursive: true });
  await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), await tensorsOf(adapters, true), { format: 'pt' });
  await writeFile(join(dir, ADAPTER_CONFIG_FILE), `${JSON.stringify(peftConfig(exported, adapters), null, 2)}\n`);
  return base;
}

export interface ConvertResult {
  file: string;
  tensors: number;
  notes: string[];
}

/**
 * Writes an adapter's adapter_model.bin as adapter_model.safetensors beside it: every tensor with
 * its name, shape and dtype (a strided view is written row-major). The adapter is loaded first,
 * so only an adapter that loads is converted; the .bin is left as it is.
 */
export async function convertTorchAdapter(dir: string, options: { overwrite?: boolean } = {}): Promise<ConvertResult> {
  const source = join(dir, ADAPTER_TORCH_FILE);
  const target = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!options.overwrite && (await isPresent(target))) {
    fail(target, `already exists, and loading reads it before ${ADAPTER_TORCH_FILE}; pass --force to replace it`);
  }
  const { adapters, notes } = await loadAdapterFrom(dir, () => TorchCheckpoint.open(source));
  for (const { weights } of adapters.values()) disposeAdapterWeights(weights);
  const checkpoint = await TorchCheckpoint.open(source);
  try {
    const tensors: TensorToWrite[] = [];
    for (const [name, { dtype, shape }] of checkpoint.tensors) tensors.push({ name, dtype, shape, data: await checkpoint.readFloat32(name) });
    await writeSafetensors(target, tensors, { format: 'pt' });
    return { file: target, tensors: tensors.length, notes };
  } finally {
    await checkpoint.close();
  }
}

function fail(file: string, problem: string): never {
  throw new Error(`${file}: ${problem}`);
}

function readSettings(file: string, raw: unknown): AdapterSettings {
  if (raw === null || typeof raw !== 'object') fail(file, 'not a JSON object');
  const config = raw as Record<string, unknown>;
  if (config.peft_type !== 'LORA') fail(file, `peft_type is ${JSON.stringify(config.peft_type)}; only LORA adapters (and MoSLoRA, which extends them) can be loaded`);
  const number = (key: string) => (typeof config[key] === 'number' ? (config[key] as number) : fail(file, `"${key}" must be a number`));
  const moslora = (config.moslora ?? {}) as Record<string, unknown>;
  const method = (moslora.method ?? (config.lora_use_mixer ? 'moslora' : 'lora')) as AdapterMethod;
  if (!ADAPTER_METHODS.includes(method)) fail(file, `moslora.method ${JSON.stringify(method)} is unknown; allowed: ${ADAPTER_METHODS.join(', ')}`);
  const mixerInit = (moslora.mixer_init ?? 'kaiming') as MixerInit;
  if (!MIXER_INITS.includes(mixerInit)) fail(file, `moslora.mixer_init ${JSON.stringify(mixerInit)} is unknown`);
  if (config.use_dora !== undefined && config.use_dora !== null && typeof config.use_dora !== 'boolean') fail(file, `"use_dora" must be true or false, got ${JSON.stringify(config.use_dora)}`);
  const targets = config.target_modules;
  const numbers = (key: string): Record<string, number> => {
    const value = config[key];
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Object.values(value).some((v) => typeof v !== 'number')) fail(file, `"${key}" must map module names to numbers`);
    return value as Record<string, number>;
  };
  const basePrecision = readBasePrecision(file, moslora.base_precision);
  return {
    baseModel: String(config.base_model_name_or_path ?? ''),
    method,
    r: number('r'),
    alpha: number('lora_alpha'),
    dropout: typeof config.lora_dropout === 'number' ? config.lora_dropout : 0,
    useRslora: config.use_rslora === true,
    useDora: config.use_dora === true,
    mixerInit,
    chainLength: typeof moslora.chain_length === 'number' ? moslora.chain_length : 2,
    targetModules: Array.isArray(targets) ? targets.map(String) : typeof targets === 'string' ? [targets] : [],
    fanInFanOut: config.fan_in_fan_out === true,
    rankPattern: numbers('rank_pattern'),
    alphaPattern: numbers('alpha_pattern'),
    ...(basePrecision ? { basePrecision } : {}),
  };
}

/** moslora.base_precision, checked as a config's keys are; undefined where absent. */
function readBasePrecision(file: string, raw: unknown): BasePrecisionKeys | undefined {
  if (raw === undefined || raw === null) return undefined;
  const parsed = basePrecisionSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = ['moslora', 'base_precision', ...issue.path.map(String)].join('.');
  return fail(file, `${where}: ${issue.message} (the stored precision of the frozen base the adapter trained on: torch_dtype, load_in_8bit, load_in_4bit, bnb_4bit_quant_type, quant_group_size)`);
}

/** An adapter's tensor file, whichever format it is in. */
interface AdapterWeightsFile {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, { readonly shape: readonly number[] }>;
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

async function isPresent(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => error.code !== 'ENOENT',
  );
}

/** adapter_model.safetensors, else adapter_model.bin (PEFT's order). */
async function openAdapterWeights(dir: string): Promise<AdapterWeightsFile> {
  const safetensors = join(dir, ADAPTER_WEIGHTS_FILE);
  if (await isPresent(safetensors)) return SafetensorsFile.open(safetensors);
  const torch = join(dir, ADAPTER_TORCH_FILE);
  if (await isPresent(torch)) return TorchCheckpoint.open(torch);
  return fail(dir, `holds neither ${ADAPTER_WEIGHTS_FILE} nor ${ADAPTER_TORCH_FILE}: where are the adapter's weights?`);
}

/** Up to `count` names, quoted, and how many more there are. */
function listNames(names: readonly string[], count = 4): string {
  const shown = names.slice(0, count).map((name) => JSON.stringify(name)).join(', ');
  return names.length > count ? `${shown} and ${names.length - count} more` : shown;
}

const MIXER_TENSOR = /\.lora_AB(?:\.\d+)?\.weight$/;
const MAGNITUDE_TENSOR = /\.lora_magnitude_vector(?:\.weight)?$/;

export interface LoadedAdapter {
  settings: AdapterSettings;
  adapters: Map<string, Adapter>;
  /** What loading decided that the files do not say outright (for the user to see). */
  notes: string[];
}

/**
 * Plain LoRA by its config, but the file holds mixers: applied as MoSLoRA when the config does
 * not say either way and every module has exactly one (`lora_AB.weight`, as the reference code
 * saves them; their shapes are checked with the rest); refused otherwise, naming them.
 */
function mixerMethod(configFile: string, weightsFile: string, raw: Record<string, unknown>, names: readonly string[], modules: ReadonlySet<string>): { method: AdapterMethod; note: string } {
  const mixers = names.filter((name) => MIXER_TENSOR.test(name));
  const found = `holds ${mixers.length} mixer tensor${mixers.length === 1 ? '' : 's'} (${listNames(mixers)})`;
  const block = (raw.moslora as Record<string, unknown> | undefined)?.method !== undefined;
  if (block || raw.lora_use_mixer !== undefined) {
    const said = block ? '"moslora": {"method": "lora"}' : `"lora_use_mixer": ${JSON.stringify(raw.lora_use_mixer)}`;
    const fix = block ? '"moslora": {"method": "moslora"}' : '"lora_use_mixer": true';
    fail(weightsFile, `${found}, but ${configFile} says plain LoRA (${said}); to apply them as MoSLoRA set ${fix} there, or remove them to load plain LoRA`);
  }
  const single = [...modules].filter((module) => names.includes(mixerKey(module, 0, 1)));
  if (single.length !== modules.size || mixers.length !== modules.size) {
    const without = [...modules].filter((module) => !single.includes(module));
    fail(
      weightsFile,
      `${found}, which ${configFile} does not mention ("lora_use_mixer" is not set), and they are not one lora_AB.weight per module` +
        `${without.length ? ` (${listNames(without)} ha${without.length === 1 ? 's' : 've'} none)` : ''}: say what they are in ${configFile} ` +
        '("lora_use_mixer": true, or "moslora": {"method": "linchain", "chain_length": N} for lora_AB.<i>.weight chains), or remove them to load plain LoRA',
    );
  }
  return {
    method: 'moslora',
    note: `${configFile} does not set "lora_use_mixer", but ${weightsFile} holds a mixer (lora_AB) for each of its ${modules.size} modules: applied as MoSLoRA (ΔW = s·B·M·A). Add "lora_use_mixer": true to say so.`,
  };
}

/** Reads an adapter folder (native or PEFT; safetensors or torch.save's .bin) into per-module factors, checking every shape and using every tensor. */
export function loadAdapter(dir: string): Promise<LoadedAdapter> {
  return loadAdapterFrom(dir, () => openAdapterWeights(dir));
}

async function loadAdapterFrom(dir: string, openWeights: () => Promise<AdapterWeightsFile>): Promise<LoadedAdapter> {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(configFile, 'utf8'));
  } catch (error) {
    fail(configFile, `cannot read the adapter config (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let settings = readSettings(configFile, raw);
  const notes: string[] = [];
  const file = await openWeights();
  const weightsFile = file.path;
  try {
    const names = [...file.tensors.keys()];
    const modules = new Set<string>();
    const foreign: string[] = [];
    for (const name of names) {
      const match = /^base_model\.model\.(.+)\.(?:lora_(?:A|B|AB(?:\.\d+)?)\.weight|lora_magnitude_vector(?:\.weight)?)$/.exec(name);
      if (match) modules.add(match[1]!);
      else foreign.push(name);
    }
    if (foreign.length > 0) {
      fail(
        weightsFile,
        `${listNames(foreign)} ${foreign.length === 1 ? 'is not a LoRA factor' : 'are not LoRA factors'} (expected base_model.model.<module>.lora_A|lora_B|lora_AB.weight or .lora_magnitude_vector); this tool reads LoRA, MoSLoRA and DoRA adapters only`,
      );
    }
    if (modules.size === 0) fail(weightsFile, 'no adapter tensors');
    const magnitudes = names.filter((name) => MAGNITUDE_TENSOR.test(name));
    if (!settings.useDora && magnitudes.length > 0) {
      fail(
        weightsFile,
        `holds ${magnitudes.length} DoRA magnitude vector${magnitudes.length === 1 ? '' : 's'} (${listNames(magnitudes)}), but ${configFile} does not set "use_dora": true; ` +
          'set it to load the adapter as DoRA (without the magnitudes it is not the adapter that was trained)',
      );
    }
    if (settings.method === 'lora' && names.some((name) => MIXER_TENSOR.test(name))) {
      const { method, note } = mixerMethod(configFile, weightsFile, raw as Record<string, unknown>, names, modules);
      settings = { ...settings, method };
      notes.push(note);
    }
    const used = new Set<string>();
    const adapters = new Map<string, Adapter>();
    for (const module of modules) {
      const read = async (name: string) => {
        const info = file.tensors.get(name) ?? fail(weightsFile, `module ${module} has no tensor "${name}"`);
        if (info.shape.length !== 2) fail(weightsFile, `"${name}" must be 2-D, its shape is [${info.shape.join(', ')}]`);
        used.add(name);
        return tf.tensor2d(await file.readFloat32(name), info.shape as [number, number]);
      };
      const readMagnitude = async () => {
        const name = [magnitudeKey(module), `${magnitudeKey(module)}.weight`].find((key) => file.tensors.has(key));
        if (name === undefined) fail(weightsFile, `module ${module} has no tensor "${magnitudeKey(module)}" (DoRA's magnitude; ${configFile} sets "use_dora": true)`);
        const info = file.tensors.get(name)!;
        if (info.shape.length !== 1) fail(weightsFile, `"${name}" must be 1-D [d_out], its shape is [${info.shape.join(', ')}]`);
        used.add(name);
        return tf.tensor1d(await file.readFloat32(name));
      };
      const A = await read(`${PREFIX}${module}.lora_A.weight`);
      const B = await read(`${PREFIX}${module}.lora_B.weight`);
      let spec: ResolvedAdapterSpec;
      let mixers: tf.Tensor2D[];
      let magnitude: tf.Tensor1D | undefined;
      try {
        const probe = resolveAdapterSpec({
          method: settings.method,
          dIn: A.shape[1],
          dOut: B.shape[0],
          r: patternValue(settings.rankPattern, module) ?? settings.r,
          alpha: patternValue(settings.alphaPattern, module) ?? settings.alpha,
          useRslora: settings.useRslora,
          chainLength: settings.chainLength,
          // A trained adapter's mixers are what they are; only its init would be rejected.
          mixerInit: settings.mixerInit === 'zeros' ? 'kaiming' : settings.mixerInit,
          dropout: settings.dropout,
          useDora: settings.useDora ?? false,
        });
        const count = mixerCount(probe);
        mixers = await Promise.all(Array.from({ length: count }, (_, i) => read(mixerKey(module, i, count))));
        if (settings.useDora) magnitude = await readMagnitude();
        spec = { ...probe, mixerInit: settings.mixerInit };
        checkAdapterShapes(spec, { A, B, mixers, ...(magnitude ? { magnitude } : {}) });
      } catch (error) {
        const message = (error as Error).message;
        fail(weightsFile, message.startsWith(weightsFile) ? message.slice(weightsFile.length + 2) : `module ${module}: ${message}`);
      }
      adapters.set(module, { spec, weights: { A, B, mixers, ...(magnitude ? { magnitude } : {}) } });
    }
    const unused = names.filter((name) => !used.has(name));
    if (unused.length > 0) {
      fail(
        weightsFile,
        `${listNames(unused)} ${unused.length === 1 ? 'is' : 'are'} not part of a ${settings.method} adapter${settings.method === 'linchain' ? ` of chain_length ${settings.chainLength}` : ''}` +
          ` as ${configFile} describes it; fix the config (moslora.method, moslora.chain_length) or remove ${unused.length === 1 ? 'it' : 'them'}`,
      );
    }
    return { settings, adapters, notes };
  } finally {
    await file.close();
  }
}
