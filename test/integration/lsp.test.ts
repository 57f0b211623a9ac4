// The built language server (dist/server.js; `npm run build` first), spawned over stdio and
// driven as an editor drives it: diagnostics with exact ranges, completion from a real (tiny)
// checkpoint, hover counts, quick fixes, diagnostics that follow files on disk, and bad input
// of every kind answered with a diagnostic rather than a crash.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { TextDocument } from 'vscode-languageserver-textdocument';
import {
  CodeActionRequest,
  CodeLensRequest,
  CompletionRequest,
  HoverRequest,
  type CompletionItem,
  type CompletionList,
  type Diagnostic,
  type MarkupContent,
  type Position,
  type TextEdit,
} from 'vscode-languageserver-protocol/node';
import { writeSafetensors, type TensorToWrite } from '../../server/formats/safetensors';
import { commandIds } from '../../protocol/commands';
import { settingsNotification } from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';

const HIDDEN = 64;
const KV = 32;
const FFN = 128;
const VOCAB = 100;

/** A two-layer Llama-style checkpoint: names and shapes as transformers writes them, zeros inside. */
function llamaTensors(): TensorToWrite[] {
  const t = (name: string, shape: number[]): TensorToWrite => ({ name, dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const tensors = [t('model.embed_tokens.weight', [VOCAB, HIDDEN]), t('model.norm.weight', [HIDDEN]), t('lm_head.weight', [VOCAB, HIDDEN])];
  for (const layer of [0, 1]) {
    const p = `model.layers.${layer}`;
    tensors.push(
      t(`${p}.self_attn.q_proj.weight`, [HIDDEN, HIDDEN]),
      t(`${p}.self_attn.k_proj.weight`, [KV, HIDDEN]),
      t(`${p}.self_attn.v_proj.weight`, [KV, HIDDEN]),
      t(`${p}.self_attn.o_proj.weight`, [HIDDEN, HIDDEN]),
      t(`${p}.mlp.gate_proj.weight`, [FFN, HIDDEN]),
      t(`${p}.mlp.up_proj.weight`, [FFN, HIDDEN]),
      t(`${p}.mlp.down_proj.weight`, [HIDDEN, FFN]),
      t(`${p}.input_layernorm.weight`, [HIDDEN]),
      t(`${p}.post_attention_layernorm.weight`, [HIDDEN]),
    );
  }
  return tensors;
}
const TOTAL_PARAMETERS = llamaTensors().reduce((sum, t) => sum + t.data.length, 0);
const LLAMA_CONFIG = JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: HIDDEN, intermediate_size: FFN, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: VOCAB });

const GOOD_LINE = '{"prompt": "2+2=", "completion": "4"}';
const CONFIG = [
  'model: ./tiny-llama',
  'method: mosloar',
  'r: 64',
  'target_modules: [q_proj, k_prj, v_proj]',
  'data:',
  '  train: train.jsonl',
  '  eval: eval.jsonl',
  '',
].join('\n');

function range(line: number, start: number, end: number) {
  return { start: { line, character: start }, end: { line, character: end } };
}

function messageOf(diagnostic: Diagnostic): string {
  return typeof diagnostic.message === 'string' ? diagnostic.message : diagnostic.message.value;
}

function summary(diagnostics: Diagnostic[]): string[] {
  return diagnostics.map((d) => `${d.range.start.line}:${d.range.start.character} ${messageOf(d)}`);
}

function labels(result: CompletionItem[] | CompletionList | null): string[] {
  const items = Array.isArray(result) ? result : (result?.items ?? []);
  return [...items].sort((a, b) => (a.sortText ?? a.label).localeCompare(b.sortText ?? b.label)).map((item) => item.label);
}

function hoverText(contents: unknown): string {
  return (contents as MarkupContent).value;
}

describe('language server over stdio', { skip: existsSync(SERVER) ? false : `${SERVER} is not built; run npm run build` }, () => {
  let dir: string;
  let client: LspClient;
  const uriOf = (name: string) => pathToFileURL(join(dir, name)).href;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-lsp-'));
    await mkdir(join(dir, 'tiny-llama'));
    await writeFile(join(dir, 'tiny-llama', 'config.json'), LLAMA_CONFIG);
    await writeSafetensors(join(dir, 'tiny-llama', 'model.safetensors'), llamaTensors());
    await mkdir(join(dir, 'broken-model'));
    await writeFile(join(dir, 'broken-model', 'config.json'), LLAMA_CONFIG);
    await writeFile(join(dir, 'broken-model', 'model.safetensors'), Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"oops": nonsense'));
    await writeFile(join(dir, 'train.jsonl'), [GOOD_LINE, GOOD_LINE, '{"prompt": "3+3=", "answer": "6"}', ''].join('\n'));
    await writeFile(join(dir, 'bad.jsonl'), `${GOOD_LINE}\n{"prompt": "unterminated\n`);
    client = await LspClient.start(dir);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const main = () => uriOf('main.moslora.yaml');

  it('reports each planted mistake at the range of the offending value', async () => {
    await client.open(main(), CONFIG);
    const diagnostics = await client.waitForDiagnostics(main(), (list) => list.length >= 5, 'all five planted mistakes show');
    const byLine = new Map(diagnostics.map((d) => [d.range.start.line, d]));
    assert.equal(diagnostics.length, 5, summary(diagnostics).join('\n'));

    assert.deepEqual(byLine.get(1)!.range, range(1, 8, 15));
    assert.equal(byLine.get(1)!.message, 'method: string "mosloar" is not allowed; allowed: lora, moslora, moslora-fixed, linchain; did you mean "moslora"?');

    assert.deepEqual(byLine.get(3)!.range, range(3, 25, 30));
    assert.equal(byLine.get(3)!.message, 'target_modules: "k_prj" matches no linear module of tiny-llama (LlamaForCausalLM); did you mean "k_proj"?');

    // v_proj is 64 → 32: r may be at most 32.
    assert.deepEqual(byLine.get(2)!.range, range(2, 3, 5));
    assert.equal(
      byLine.get(2)!.message,
      'r: 64 is larger than the smallest dimension of a targeted module (model.layers.0.self_attn.v_proj: d_in 64, d_out 32); the largest r allowed is 32',
    );

    assert.deepEqual(byLine.get(5)!.range, range(5, 9, 20));
    assert.equal(
      byLine.get(5)!.message,
      'data.train: train.jsonl line 3: missing field "completion" (format completion needs prompt, completion; this line has prompt, answer)',
    );
    assert.equal(byLine.get(5)!.relatedInformation?.[0]?.location.range.start.line, 2);

    assert.deepEqual(byLine.get(6)!.range, range(6, 8, 18));
    assert.equal(byLine.get(6)!.message, `data.eval: file not found: ${join(dir, 'eval.jsonl')}`);
  });

  it('quick fixes rewrite the misspelt value, the misspelt module and the too-large r', async () => {
    const diagnostics = client.diagnostics.get(main())!;
    const actions = await client.connection.sendRequest(CodeActionRequest.type, {
      textDocument: { uri: main() },
      range: range(0, 0, 7),
      context: { diagnostics },
    });
    assert.deepEqual(actions?.map((action) => ('title' in action ? action.title : '')).sort(), ['Change r to 32', 'Change to k_proj', 'Change to moslora']);
    const edits = actions!.flatMap((action) => ('edit' in action && action.edit?.changes ? action.edit.changes[main()]! : [])) as TextEdit[];
    const fixed = TextDocument.applyEdits(TextDocument.create(main(), 'moslora-config', 1, CONFIG), edits);
    assert.equal(fixed, CONFIG.replace('mosloar', 'moslora').replace('k_prj', 'k_proj').replace('r: 64', 'r: 32'));

    await client.change(main(), fixed);
    const after = await client.waitForDiagnostics(main(), (list) => list.length === 2, 'only the dataset mistakes are left');
    assert.deepEqual(after.map((d) => d.range.start.line).sort(), [5, 6], summary(after).join('\n'));
  });

  it('diagnostics follow the dataset files as they change on disk', async () => {
    await writeFile(join(dir, 'train.jsonl'), [GOOD_LINE, GOOD_LINE, GOOD_LINE, ''].join('\n'));
    await client.waitForDiagnostics(main(), (list) => list.every((d) => d.range.start.line !== 5), 'the fixed train file is clean');
    await writeFile(join(dir, 'eval.jsonl'), `${GOOD_LINE}\n`);
    await client.waitForDiagnostics(main(), (list) => list.length === 0, 'the new eval file is found');
    await writeFile(join(dir, 'eval.jsonl'), '{"text": "no prompt here"}\n');
    const broken = await client.waitForDiagnostics(main(), (list) => list.length === 1, 'the edited eval file is checked again');
    assert.match(messageOf(broken[0]!), /^data\.eval: eval\.jsonl line 1: missing field "prompt"/);
    assert.deepEqual(broken[0]!.range, range(6, 8, 18));
  });

  it('hover on r counts the trainable parameters of LoRA and MoSLoRA against the base model', async () => {
    const hover = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri: main() }, position: { line: 2, character: 0 } });
    const text = hoverText(hover?.contents);
    // q (64 → 64), k and v (64 → 32) in two layers at r = 32: 32·(128 + 96 + 96)·2 for A and B, plus 6·32² for the mixers.
    const lora = 32 * (128 + 96 + 96) * 2;
    const moslora = lora + 6 * 32 * 32;
    assert.match(text, /^\*\*r\*\* — Adapter rank\. At most 4,096[^\n]*\n\nDefault: `16`/);
    assert.ok(text.includes(`on 6 modules of tiny-llama (LlamaForCausalLM, ${TOTAL_PARAMETERS.toLocaleString('en-US')} parameters)`), text);
    assert.ok(text.includes(`| LoRA | ${lora.toLocaleString('en-US')} | ${((100 * lora) / TOTAL_PARAMETERS).toPrecision(3)} % |`), text);
    assert.ok(text.includes(`| MoSLoRA (this config) | ${moslora.toLocaleString('en-US')} | ${((100 * moslora) / TOTAL_PARAMETERS).toPrecision(3)} % |`), text);
    assert.deepEqual(hover?.range, range(2, 0, 1));

    const entry = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri: main() }, position: { line: 3, character: 27 } });
    assert.match(hoverText(entry?.contents), /`k_proj` matches 2 modules:\n- `model\.layers\.0\.self_attn\.k_proj`: d_in 64, d_out 32/);
    const doc = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri: main() }, position: { line: 5, character: 3 } });
    assert.match(hoverText(doc?.contents), /^\*\*data\.train\*\* — Training data: .*\n\nRequired\.$/);
  });

  it('completes target modules from the checkpoint: short names first, then full names, in flow and block lists', async () => {
    const uri = uriOf('complete.moslora.yaml');
    const text = 'model: ./tiny-llama\ntarget_modules: [q_proj, k_\ndata:\n  train: train.jsonl\n  \n';
    await client.open(uri, text);
    const at = (position: Position) => client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position });
    const flow = labels(await at({ line: 1, character: 27 }));
    // the modules training would adapt, in forward order; the LM head last (PEFT can target it)
    assert.deepEqual(flow.slice(0, 7), ['k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head']);
    assert.equal(flow[7], 'model.layers.0.self_attn.q_proj', 'full names for every module, in forward order');
    assert.equal(flow.length, 7 + 15);
    assert.ok(flow.includes('model.layers.1.mlp.down_proj'));
    assert.ok(!flow.some((label) => /embed_tokens|norm/.test(label)), flow.join(', '));

    await client.change(uri, 'model: ./tiny-llama\ntarget_modules:\n  - q_proj\n  - \n');
    const block = labels(await at({ line: 3, character: 4 }));
    assert.equal(block[0], 'k_proj');
    assert.ok(!block.includes('q_proj'));
  });

  it('completes the keys of a section, with their docs and defaults, and the values of a key', async () => {
    const uri = uriOf('complete.moslora.yaml');
    await client.change(uri, 'model: \ndata:\n  train: train.jsonl\n  \nmethod: \n');
    const keys = await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 3, character: 2 } });
    const items = Array.isArray(keys) ? keys : keys!.items;
    assert.deepEqual(items.map((item) => item.label).sort(), ['eval', 'eval_split', 'fields', 'format', 'max_length', 'packing', 'train_on_prompt']);
    const format = items.find((item) => item.label === 'format')!;
    assert.equal(format.detail, 'default: completion');
    assert.match((format.documentation as MarkupContent).value, /^\*\*data\.format\*\* — text: /);

    const methods = labels(await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 4, character: 8 } }));
    assert.deepEqual(methods, ['lora', 'moslora', 'moslora-fixed', 'linchain']);
    const models = labels(await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 7 } }));
    assert.deepEqual(models, ['broken-model', 'tiny-llama']);
  });

  it('puts Train and Estimate lenses at the top of a config', async () => {
    const lenses = await client.connection.sendRequest(CodeLensRequest.type, { textDocument: { uri: main() } });
    assert.deepEqual(
      lenses?.map((lens) => [lens.command?.command, lens.command?.arguments]),
      [
        [commandIds.startTraining, [main()]],
        [commandIds.estimate, [main()]],
      ],
    );
    // a finished run of this config (its resolved config names the config's path) adds its lenses
    const runDir = join(dir, 'runs', 'main-1');
    await mkdir(join(runDir, 'adapter'), { recursive: true });
    await writeFile(join(runDir, 'config.yaml'), `configPath: ${join(dir, 'main.moslora.yaml')}\n`);
    await writeFile(join(runDir, 'adapter', 'adapter_config.json'), '{}');
    await writeFile(join(runDir, 'summary.json'), JSON.stringify({ state: 'done' }));
    const after = await client.connection.sendRequest(CodeLensRequest.type, { textDocument: { uri: main() } });
    assert.deepEqual(
      after?.slice(2).map((lens) => [lens.command?.command, lens.command?.arguments]),
      [
        [commandIds.openPanel, [runDir]],
        [commandIds.mergeAdapter, [join(runDir, 'adapter')]],
      ],
    );
    // the editor's moslora.runsDirectory, sent when it changes, overrides the config's runs_dir
    const centralRun = join(dir, 'central', 'main-2');
    await mkdir(centralRun, { recursive: true });
    await writeFile(join(centralRun, 'config.yaml'), `configPath: ${join(dir, 'main.moslora.yaml')}\n`);
    const openPanelOf = async (c: LspClient) =>
      (await c.connection.sendRequest(CodeLensRequest.type, { textDocument: { uri: main() } }))?.slice(2).map((lens) => lens.command?.arguments?.[0]);
    await client.connection.sendNotification(settingsNotification, { runsDirectory: join(dir, 'central') });
    assert.deepEqual(await openPanelOf(client), [centralRun]);
    await client.connection.sendNotification(settingsNotification, { runsDirectory: null });
    assert.deepEqual(await openPanelOf(client), [runDir, join(runDir, 'adapter')]);
    // … and arrives with the initialize request
    const second = await LspClient.start(dir, { initializationOptions: { runsDirectory: join(dir, 'central') } });
    try {
      await second.open(main(), CONFIG);
      assert.deepEqual(await openPanelOf(second), [centralRun]);
    } finally {
      await second.stop();
    }
    await rm(join(dir, 'runs'), { recursive: true });
    await rm(join(dir, 'central'), { recursive: true });
  });

  it("warns at max_length when the run's estimated memory exceeds the wasm heap", async () => {
    const uri = uriOf('memory.moslora.yaml');
    await client.open(uri, ['model: ./tiny-llama', 'backend: wasm', 'data:', '  train: train.jsonl', '  max_length: 100000', 'training:', '  batch_size: 1', ''].join('\n'));
    const diagnostics = await client.waitForDiagnostics(uri, (list) => list.some((d) => messageOf(d).startsWith('memory:')), 'the memory warning shows');
    const warning = diagnostics.find((d) => messageOf(d).startsWith('memory:'))!;
    assert.equal(warning.range.start.line, 4);
    assert.match(messageOf(warning), /wasm backend's 4 GiB heap/);
  });

  it('answers a malformed config, a malformed dataset and a corrupt checkpoint with diagnostics, and keeps answering', async () => {
    const syntax = uriOf('syntax.moslora.yaml');
    await client.open(syntax, 'model: [unclosed\nr: 8\n');
    const [yaml] = await client.waitForDiagnostics(syntax, (list) => list.length > 0, 'the syntax error shows');
    assert.match(messageOf(yaml!), /^YAML syntax: /);

    const data = uriOf('data.moslora.yaml');
    await client.open(data, 'model: ./tiny-llama\ndata:\n  train: bad.jsonl\n');
    const [line] = await client.waitForDiagnostics(data, (list) => list.length > 0, 'the bad dataset line shows');
    assert.match(messageOf(line!), /^data\.train: bad\.jsonl line 2: invalid JSON/);
    assert.deepEqual(line!.range, range(2, 9, 18));

    const corrupt = uriOf('corrupt.moslora.yaml');
    await client.open(corrupt, 'model: ./broken-model\ndata:\n  train: train.jsonl\n');
    const [model] = await client.waitForDiagnostics(corrupt, (list) => list.length > 0, 'the corrupt checkpoint shows');
    assert.ok(messageOf(model!).startsWith(`model: ${join(dir, 'broken-model', 'model.safetensors')}: `), messageOf(model!));
    assert.deepEqual(model!.range, range(0, 7, 21));

    const hover = await client.connection.sendRequest(HoverRequest.type, { textDocument: { uri: corrupt }, position: { line: 0, character: 1 } });
    assert.match(hoverText(hover?.contents), /^\*\*model\*\*/);
  });

  it('follows a model folder from missing, to config.json only, to downloaded', async () => {
    const uri = uriOf('download.moslora.yaml');
    const folder = join(dir, 'hub', 'downloading');
    await client.open(uri, 'model: ./hub/downloading\ntarget_modules: [q_proj]\ndata:\n  train: train.jsonl\n');
    const [missing] = await client.waitForDiagnostics(uri, (list) => list.length > 0, 'the missing folder shows');
    assert.equal(messageOf(missing!), `model: folder not found: ${folder}`);
    assert.deepEqual(missing!.range, range(0, 7, 24));
    // Two folder levels appear at once: the watcher moves from the workspace folder down to the model folder.
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'config.json'), LLAMA_CONFIG);
    await client.waitForDiagnostics(uri, (list) => /^model: .*downloading: no safetensors weights/.test(list[0] ? messageOf(list[0]) : ''), 'the missing weights show');
    await writeSafetensors(join(folder, 'model.safetensors'), llamaTensors());
    await client.waitForDiagnostics(uri, (list) => list.length === 0, 'the downloaded weights are found');
  });

  it('exits on shutdown and exit, its watchers notwithstanding', async () => {
    assert.equal(await client.stop(), 0);
  });
});
