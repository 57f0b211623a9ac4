// Completion in a config: the keys allowed at the cursor's level (with their docs and defaults),
// enum values and booleans, files relative to the config (model folders, datasets), and the
// checkpoint's own module names in `target_modules`.
import { readdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { CompletionItemKind, InsertTextFormat, MarkupKind, type CompletionItem } from 'vscode-languageserver';
import { unreadableConfig } from '../config/load';
import { cursorContext, type CursorContext } from './context';
import { ConfigSource, filePathOf, languageOf, resolveFrom, writtenModel } from './document';
import { targetNames, type FactCache } from './facts';
import { ALL_LINEAR, type ModuleSize } from '../models/modules';
import { fieldAt, fieldMarkdown, formatValue, keysAt } from './schema-info';

export const TRIGGER_CHARACTERS = [' ', ':', '-', '[', ',', '"', '/', '.'];

export async function completeConfig(uri: string, text: string, position: { line: number; character: number }, facts: FactCache): Promise<CompletionItem[]> {
  if (unreadableConfig(text)) return [];
  const language = languageOf(uri);
  const context = cursorContext(text, position, language);
  if (!context) return [];
  const json = language === 'json';
  const configPath = filePathOf(uri);
  switch (context.kind) {
    case 'key':
      return keyItems(context, json);
    case 'value': {
      const field = fieldAt(context.path);
      if (!field) return [];
      const path = field.name;
      if (configPath && path === 'model') return pathItems(context, configPath, 'model', json);
      if (configPath && (path === 'data.train' || path === 'data.eval')) return pathItems(context, configPath, 'dataset', json);
      if (configPath && path.startsWith('data.fields.')) return datasetFieldItems(context, text, configPath, facts, json);
      if (path === 'target_modules') {
        return [{ label: ALL_LINEAR, kind: CompletionItemKind.Value, detail: 'every linear module but lm_head', textEdit: { range: context.range, newText: json && !context.quoted ? JSON.stringify(ALL_LINEAR) : ALL_LINEAR } }];
      }
      return field.values.map((value, i) => ({
        label: value,
        kind: field.kind === 'boolean' ? CompletionItemKind.Value : CompletionItemKind.EnumMember,
        sortText: String(i).padStart(3, '0'),
        ...(value === formatValue(field.defaultValue) ? { detail: 'default' } : {}),
        textEdit: { range: context.range, newText: json && !context.quoted && field.kind === 'enum' ? JSON.stringify(value) : value },
      }));
    }
    case 'item': {
      if (context.path.join('.') !== 'target_modules' || !configPath) return [];
      const model = writtenModel(text, language);
      if (!model) return [];
      const modelFacts = await facts.model(resolveFrom(configPath, model));
      return modelFacts.ok ? moduleItems(context, modelFacts.modules, json) : [];
    }
  }
}

/** The field names of the training data's first records, for data.fields. */
async function datasetFieldItems(
  context: Extract<CursorContext, { kind: 'value' }>,
  text: string,
  configPath: string,
  facts: FactCache,
  json: boolean,
): Promise<CompletionItem[]> {
  const train = new ConfigSource(text).scalar(['data', 'train'])?.value;
  if (typeof train !== 'string') return [];
  const head = await facts.dataset(resolveFrom(configPath, train));
  if (!head.ok) return [];
  const names = [...new Set(head.records.flatMap((record) => Object.keys(record.value)))];
  return names.map((name, i) => ({
    label: name,
    kind: CompletionItemKind.Field,
    detail: `a field of ${train}`,
    sortText: String(i).padStart(3, '0'),
    textEdit: { range: context.range, newText: json && !context.quoted ? JSON.stringify(name) : name },
  }));
}

function keyItems(context: Extract<CursorContext, { kind: 'key' }>, json: boolean): CompletionItem[] {
  const keys = keysAt(context.path);
  if (!keys) return [];
  const inner = ' '.repeat(context.indent + 2);
  return keys
    .filter((key) => !context.siblings.includes(key))
    .map((key, i) => {
      const field = fieldAt([...context.path, key])!;
      const choices = field.kind === 'enum' || field.kind === 'boolean' || ['model', 'data.train', 'data.eval'].includes(field.name);
      let newText: string;
      if (json) newText = context.quoted ? key : `"${key}": ${field.kind === 'object' ? '{$0}' : field.kind === 'list' ? '[$0]' : '$0'}`;
      else if (field.kind === 'object') newText = `${key}:\n${inner}`;
      else if (field.kind === 'list') newText = `${key}:\n${inner}- `;
      else newText = `${key}: `;
      return {
        label: key,
        kind: field.kind === 'object' ? CompletionItemKind.Module : CompletionItemKind.Property,
        detail: field.required ? 'required' : field.defaultValue !== null ? `default: ${formatValue(field.defaultValue)}` : 'optional',
        documentation: { kind: MarkupKind.Markdown, value: fieldMarkdown(field) },
        sortText: `${field.required ? 0 : 1}${String(i).padStart(3, '0')}`,
        textEdit: { range: context.range, newText },
        ...(json && !context.quoted ? { insertTextFormat: InsertTextFormat.Snippet } : {}),
        ...(choices ? { command: { title: 'Suggest', command: 'editor.action.triggerSuggest' } } : {}),
      };
    });
}

function moduleItems(context: Extract<CursorContext, { kind: 'item' }>, modules: readonly ModuleSize[], json: boolean): CompletionItem[] {
  const { suffixes, names } = targetNames(modules);
  const text = (name: string) => (json && !context.quoted ? JSON.stringify(name) : name);
  const item = (label: string, detail: string, group: number, i: number): CompletionItem => ({
    label,
    kind: CompletionItemKind.Field,
    detail,
    sortText: `${group}${String(i).padStart(6, '0')}`,
    textEdit: { range: context.range, newText: text(label) },
  });
  const shapes = (list: readonly { dIn: number; dOut: number }[]) => [...new Set(list.map((m) => `${m.dIn} → ${m.dOut}`))].join(', ');
  return [
    ...suffixes
      .filter((suffix) => !context.written.includes(suffix))
      .map((suffix, i) => {
        const matched = modules.filter((m) => m.name === suffix || m.name.endsWith(`.${suffix}`));
        return item(suffix, `${matched.length} module${matched.length === 1 ? '' : 's'}, ${shapes(matched)}`, 0, i);
      }),
    ...names.filter((name) => !context.written.includes(name)).map((name, i) => item(name, shapes([modules[i]!]), 1, i)),
  ];
}

const SKIPPED_FOLDERS = new Set(['node_modules', 'runs', 'dist', 'out', '__pycache__']);
const MAX_FOLDERS = 500;

/** Model folders (holding config.json) or dataset files (.jsonl, .json) under the config's folder, a few levels deep. */
async function pathItems(context: Extract<CursorContext, { kind: 'value' }>, configPath: string, want: 'model' | 'dataset', json: boolean): Promise<CompletionItem[]> {
  const root = dirname(configPath);
  const found: string[] = [];
  const queue: [string, number][] = [[root, 0]];
  let visited = 0;
  while (queue.length && visited < MAX_FOLDERS) {
    const [dir, depth] = queue.shift()!;
    visited++;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    const isModel = entries.some((entry) => entry.isFile() && entry.name === 'config.json');
    if (isModel && dir !== root) {
      if (want === 'model') found.push(dir);
      continue; // a model folder's own JSON files are not datasets
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && !entry.name.startsWith('.') && !SKIPPED_FOLDERS.has(entry.name) && depth < 3) queue.push([path, depth + 1]);
      else if (want === 'dataset' && entry.isFile() && /\.jsonl?$/.test(entry.name) && !/\.moslora\.json$/.test(entry.name)) found.push(path);
    }
  }
  const dotted = context.prefix.startsWith('./');
  return found.sort().map((path, i) => {
    const written = (dotted ? './' : '') + relative(root, path).split(sep).join('/');
    return {
      label: written,
      kind: want === 'model' ? CompletionItemKind.Folder : CompletionItemKind.File,
      sortText: String(i).padStart(4, '0'),
      textEdit: { range: context.range, newText: json && !context.quoted ? JSON.stringify(written) : written },
    };
  });
}
