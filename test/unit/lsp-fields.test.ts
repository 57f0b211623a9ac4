import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { completeConfig } from '../../server/lsp/completion';
import { validateConfig } from '../../server/lsp/diagnostics';
import { FactCache } from '../../server/lsp/facts';

let dir: string;
const messages = (list: { message: string | { value: string } }[]) => list.map((d) => (typeof d.message === 'string' ? d.message : d.message.value));
let facts: FactCache;

describe('data.fields: the dataset’s own field names', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-fields-'));
    await writeFile(join(dir, 'train.jsonl'), `${JSON.stringify({ question: 'Q?', answer: 'A', source: 'x' })}\n`);
    facts = new FactCache(() => {});
  });
  after(async () => {
    await facts.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes a mapping’s value with the field names of the data file’s first lines', async () => {
    const text = 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: \n';
    const uri = pathToFileURL(join(dir, 'a.moslora.yaml')).href;
    const items = await completeConfig(uri, text, { line: 4, character: 12 }, facts);
    assert.deepEqual(items.map((i) => i.label), ['question', 'answer', 'source']);
  });

  it('checks the data with the mapping, naming a missing field as the dataset names it', async () => {
    const uri = pathToFileURL(join(dir, 'b.moslora.yaml')).href;
    const good = await validateConfig(uri, 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: question\n    completion: answer\n', facts);
    assert.ok(!messages(good.diagnostics).some((m) => m.startsWith('data.train')), messages(good.diagnostics).join('\n'));
    const bad = await validateConfig(uri, 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: question\n    completion: answr\n', facts);
    assert.ok(messages(bad.diagnostics).some((m) => /data\.train: train\.jsonl line 1: missing field "answr" \(data\.fields\.completion\)/.test(m)), messages(bad.diagnostics).join('\n'));
  });
});
