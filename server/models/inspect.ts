// What `moslora inspect MODEL_DIR` shows: the architecture, the parameter count and dtypes, and
// every linear module with its shape, all from config.json and the safetensors headers.

import type { Architecture, ModelConfig } from './config';
import { DEFAULT_GROUP_SIZE, type BaseFormat, type BaseFormats, type BasePrecision } from '../../kernels/base/quant';
import { baseStoreBytes, readModelLayout, type LinearModule } from './modules';

/** 1.5 GiB, or 420.0 MiB under one GiB. */
export function formatGiB(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

export interface ModelInspection {
  dir: string;
  architecture: Architecture;
  config: ModelConfig;
  /** Elements of every tensor the model reads (a tied embedding once). */
  parameterCount: number;
  /** Stored dtypes of those tensors, most parameters first. */
  dtypes: { dtype: string; tensors: number; parameters: number }[];
  linearModules: LinearModule[];
  /** Bytes of the frozen base at each stored precision a config can ask for (the native weight store; baseStoreBytes). */
  baseBytes: { setting: string; bytes: number }[];
}

/** The settings inspect prices the base at, as a config writes them. */
export const PRECISION_SETTINGS: { setting: string; formats: BaseFormats }[] = (() => {
  const at = (precision: BasePrecision): BaseFormat => ({ precision, groupSize: DEFAULT_GROUP_SIZE });
  return [
    { setting: 'torch_dtype: float32', formats: { linear: at('float32'), embedding: at('float32') } },
    { setting: 'torch_dtype: bfloat16 (or float16)', formats: { linear: at('bfloat16'), embedding: at('bfloat16') } },
    { setting: 'load_in_8bit', formats: { linear: at('int8'), embedding: at('float32') } },
    { setting: 'load_in_8bit, torch_dtype: bfloat16', formats: { linear: at('int8'), embedding: at('bfloat16') } },
    { setting: 'load_in_4bit (nf4 or int4)', formats: { linear: at('nf4'), embedding: at('float32') } },
    { setting: 'load_in_4bit, torch_dtype: bfloat16', formats: { linear: at('nf4'), embedding: at('bfloat16') } },
  ];
})();

export async function inspectModel(modelDir: string): Promise<ModelInspection> {
  const { config, layout, tensors } = await readModelLayout(modelDir);
  const byDtype = new Map<string, { tensors: number; parameters: number }>();
  let parameterCount = 0;
  for (const { tensor, shape } of layout.parameters) {
    const size = shape.reduce((a, b) => a * b, 1);
    const dtype = tensors.get(tensor)!.dtype;
    const entry = byDtype.get(dtype) ?? { tensors: 0, parameters: 0 };
    byDtype.set(dtype, { tensors: entry.tensors + 1, parameters: entry.parameters + size });
    parameterCount += size;
  }
  const dtypes = [...byDtype].map(([dtype, counts]) => ({ dtype, ...counts })).sort((a, b) => b.parameters - a.parameters);
  const baseBytes = PRECISION_SETTINGS.map(({ setting, formats }) => ({ setting, bytes: baseStoreBytes(layout, formats) }));
  return { dir: modelDir, architecture: config.architecture, config, parameterCount, dtypes, linearModules: layout.linears, baseBytes };
}

/** 1234 → '1.2K', 494032768 → '494.0M', 1235814400 → '1.24B'. */
export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function shapeSummary(config: ModelConfig): string {
  const c = config;
  const heads = c.family === 'llama' && c.numKvHeads !== c.numHeads ? `${c.numHeads} (${c.numKvHeads} key/value)` : String(c.numHeads);
  const mlp = c.family === 'llama' ? c.intermediateSize : c.innerSize;
  const parts = [`${c.numLayers} layers`, `hidden ${c.hiddenSize}`, `heads ${heads} × ${c.headDim}`, `mlp ${mlp}`, `vocab ${c.vocabSize}`];
  if (c.tieWordEmbeddings) parts.push('tied embeddings');
  return parts.join(' · ');
}

/** The inspection as the CLI prints it. */
export function formatInspection(inspection: ModelInspection): string {
  const { config, linearModules } = inspection;
  const dtypes = inspection.dtypes.map((d) => `${d.dtype} ${humanCount(d.parameters)} in ${d.tensors} tensors`).join(', ');
  const nameWidth = Math.max(...linearModules.map((m) => m.name.length));
  const rows = linearModules.map((m) => {
    const notes = [m.layout === 'in_out' ? 'Conv1D [in, out]' : '', m.bias !== null ? 'bias' : '', m.name === 'lm_head' && config.tieWordEmbeddings ? `tied: ${m.weight}` : '']
      .filter(Boolean)
      .join(', ');
    return `  ${m.name.padEnd(nameWidth)}  [${m.dOut}, ${m.dIn}]${notes ? `  ${notes}` : ''}`;
  });
  return [
    `${inspection.architecture}  ${inspection.dir}`,
    `  ${shapeSummary(config)}`,
    `  parameters: ${humanCount(inspection.parameterCount)} (${inspection.parameterCount}); stored as ${dtypes}`,
    '',
    `frozen base in memory at each precision (groups of ${DEFAULT_GROUP_SIZE}; 8- and 4-bit leave the embedding and lm_head at torch_dtype):`,
    ...inspection.baseBytes.map(({ setting, bytes }) => `  ${setting.padEnd(Math.max(...inspection.baseBytes.map((b) => b.setting.length)))}  ${formatGiB(bytes)}`),
    '',
    `linear modules [d_out, d_in] (${linearModules.length}):`,
    ...rows,
  ].join('\n');
}
