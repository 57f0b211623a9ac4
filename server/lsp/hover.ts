// Hover in a config: each key's documentation and default; on `r` and `target_modules`, what the
// adapter trains, LoRA against MoSLoRA (with DoRA's magnitudes where use_dora is on), counted from
// the checkpoint's headers; on a target entry, the modules it matches; on the precision keys, the
// frozen base's memory at this config's precision and at each one a config can ask for.
import { basename } from 'node:path';
import { MarkupKind, type Hover } from 'vscode-languageserver';
import { CONFIG_DEFAULTS, DEFAULT_TARGET_MODULES } from '../config/schema';
import { ConfigSource, filePathOf, resolveFrom } from './document';
import { baseMemory, describeTargets, PRECISION_KEYS, targetedModules, writtenBaseFormats, writtenTargets, type FactCache, type ModelFacts } from './facts';
import { matchesTarget, type ModelLayout, type ModuleSize } from '../models/modules';
import { formatGiB, PRECISION_SETTINGS } from '../models/inspect';
import { fieldAt, fieldMarkdown } from './schema-info';

export interface ParameterCounts {
  modules: number;
  lora: number;
  moslora: number;
  linchain: number;
  /** DoRA's magnitude vectors, d_out per module (use_dora). */
  magnitudes: number;
}

/** Trainable parameters: r·(d_in + d_out) per module for A and B, plus r² per mixer; DoRA's magnitudes d_out per module. */
export function parameterCounts(modules: readonly ModuleSize[], r: number, chainLength: number): ParameterCounts {
  const lora = modules.reduce((sum, m) => sum + r * (m.dIn + m.dOut), 0);
  const magnitudes = modules.reduce((sum, m) => sum + m.dOut, 0);
  return { modules: modules.length, lora, moslora: lora + modules.length * r * r, linchain: lora + modules.length * chainLength * r * r, magnitudes };
}

/** What a method trains of those counts: a frozen mixer (moslora-fixed) trains as LoRA does; DoRA adds its magnitudes. */
export function trainableCount(counts: ParameterCounts, method: unknown, useDora = false): number {
  const magnitudes = useDora ? counts.magnitudes : 0;
  if (method === 'lora' || method === 'moslora-fixed') return counts.lora + magnitudes;
  return (method === 'linchain' ? counts.linchain : counts.moslora) + magnitudes;
}

export async function hoverConfig(uri: string, text: string, position: { line: number; character: number }, facts: FactCache): Promise<Hover | null> {
  const source = new ConfigSource(text);
  const at = source.pathAt(position);
  if (!at) return null;
  const field = fieldAt(at.path);
  if (!field) return null;
  const sections = [fieldMarkdown(field)];
  const key = at.path.join('.');
  const configPath = filePathOf(uri);
  const model = source.scalar(['model']);
  const precisionKey = (PRECISION_KEYS as readonly string[]).includes(key);
  if ((key === 'r' || key === 'target_modules' || precisionKey) && configPath && typeof model?.value === 'string') {
    const modelFacts = await facts.model(resolveFrom(configPath, model.value));
    if (!modelFacts.ok) sections.push(`The model folder cannot be read: ${modelFacts.problem}`);
    else if (!precisionKey) sections.push(parameterTable(source, modelFacts));
    else if (modelFacts.layout) sections.push(memoryTable(source, modelFacts.dir, modelFacts.layout));
    if (modelFacts.ok && key === 'target_modules' && !at.onKey) {
      const entry = source.list(['target_modules'])?.find((item) => item.range.start.line === at.range.start.line && item.range.start.character === at.range.start.character);
      if (typeof entry?.value === 'string') sections.push(matches(entry.value, modelFacts.modules));
    }
  }
  return { contents: { kind: MarkupKind.Markdown, value: sections.join('\n\n---\n\n') }, range: at.range };
}

function parameterTable(source: ConfigSource, model: Extract<ModelFacts, { ok: true }>): string {
  const r = source.accepted(['r'], CONFIG_DEFAULTS.r);
  const chain = source.accepted(['chain_length'], CONFIG_DEFAULTS.chain_length);
  const method = String(source.scalar(['method'])?.value ?? CONFIG_DEFAULTS.method);
  const dora = source.scalar(['use_dora'])?.value === true;
  const targets = writtenTargets(source, DEFAULT_TARGET_MODULES);
  const modules = targetedModules(model.modules, targets);
  if (modules.length === 0) return `target_modules (${describeTargets(targets)}) matches no linear module of ${basename(model.dir)} (${model.architecture}): nothing would train.`;
  const counts = parameterCounts(modules, r, chain);
  const format = (n: number) => n.toLocaleString('en-US');
  const share = (n: number) => `${((100 * n) / model.totalParameters).toPrecision(3)} %`;
  const row = (label: string, id: string, n: number): [string, string, number] => (dora ? [`${label} + DoRA`, id, n + counts.magnitudes] : [label, id, n]);
  const rows = [
    row('LoRA', 'lora', counts.lora),
    row('MoSLoRA', 'moslora', counts.moslora),
    ...(method === 'linchain' ? [row(`LinChain (${chain} mixers)`, 'linchain', counts.linchain)] : []),
  ];
  const mark = (id: string) => (id === method || (id === 'lora' && method === 'moslora-fixed') ? ' (this config)' : '');
  return [
    `Trainable parameters at r = ${r} on ${counts.modules} module${counts.modules === 1 ? '' : 's'} of ${basename(model.dir)} (${model.architecture}, ${format(model.totalParameters)} parameters):`,
    '',
    '| method | trainable | of the base model |',
    '| --- | ---: | ---: |',
    ...rows.map(([label, id, n]) => `| ${label}${mark(id)} | ${format(n)} | ${share(n)} |`),
    '',
    `MoSLoRA adds r² = ${format(r * r)} per module for its mixer.${method === 'moslora-fixed' ? ' moslora-fixed keeps the mixer frozen: it trains what LoRA trains.' : ''}` +
      (dora ? ` DoRA (use_dora) adds d_out per module for its magnitude: ${format(counts.magnitudes)}.` : ''),
  ].join('\n');
}

/** The frozen base's memory at the precision the config's keys choose (each as the schema accepts it), and at each setting inspect prices. */
function memoryTable(source: ConfigSource, dir: string, layout: ModelLayout): string {
  const formats = writtenBaseFormats(source);
  const { base, baseAtPrecisions } = baseMemory(layout, formats);
  const same = (setting: string) => {
    const at = PRECISION_SETTINGS.find((s) => s.setting === setting)!.formats;
    return at.linear.precision === formats.linear.precision && at.embedding.precision === formats.embedding.precision && base.bytes === baseAtPrecisions.find((b) => b.setting === setting)!.bytes;
  };
  return [
    `The frozen base of ${basename(dir)} takes **${formatGiB(base.bytes)}** at this config's precision: ${base.precision}.`,
    '',
    '| setting | frozen base |',
    '| --- | ---: |',
    ...baseAtPrecisions.map(({ setting, bytes }) => `| ${setting}${same(setting) ? ' (this config)' : ''} | ${formatGiB(bytes)} |`),
    '',
    `8- and 4-bit store the linear layers with a float32 scale per group of ${formats.linear.groupSize} weights and leave the embedding and lm_head at torch_dtype. The adapter, its optimizer and the activations come on top: Estimate gives the whole run.`,
  ].join('\n');
}

function matches(entry: string, modules: readonly ModuleSize[]): string {
  const matched = modules.filter((m) => matchesTarget(m.name, entry));
  if (matched.length === 0) return `\`${entry}\` matches no linear module.`;
  const shown = matched.slice(0, 8).map((m) => `- \`${m.name}\`: d_in ${m.dIn}, d_out ${m.dOut}`);
  return [`\`${entry}\` matches ${matched.length} module${matched.length === 1 ? '' : 's'}:`, ...shown, ...(matched.length > 8 ? [`- … and ${matched.length - 8} more`] : [])].join('\n');
}
