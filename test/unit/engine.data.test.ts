// Datasets (server/engine/data.ts) with a one-token-per-character tokenizer, so that each
// expectation reads off the text: the formats and their label masks, truncation, file errors with
// their line, batching and packing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Template } from '@huggingface/jinja';
import {
  choiceExamples,
  collate,
  DatasetError,
  epochBatches,
  loadExamples,
  MAX_RECORD_BYTES,
  pack,
  readRecords,
  splitExamples,
  tokenizeRecord,
  type DataTokenizer,
} from '../../server/engine/data';
import { IGNORE_INDEX } from '../../server/models/model';
import type { ChatMessage } from '../../server/models/tokenizer';

const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// One token per character (id = code point + 10), so every expectation can be read off the text.
const chars: DataTokenizer = {
  encode: (text) => [...text].map((c) => c.codePointAt(0)! + 10),
  bosTokenId: 1,
  eosTokenId: 2,
  padTokenId: 0,
  applyChatTemplate: (messages: ChatMessage[], addGenerationPrompt: boolean) =>
    new Template(CHATML).render({ messages, add_generation_prompt: addGenerationPrompt }),
};
const decode = (ids: number[]) => ids.map((id) => (id >= 10 ? String.fromCodePoint(id - 10) : `<${id}>`)).join('');
const trainedText = (ex: { inputIds: number[]; labels: number[] }) => decode(ex.labels.filter((l) => l !== IGNORE_INDEX));

let dir: string;
const file = async (name: string, text: string) => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};

describe('datasets', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-data-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('completion: BOS + prompt masked to -100, completion + EOS trained', () => {
    const ex = tokenizeRecord({ prompt: 'Q: 2+2?', completion: ' 4' }, 'completion', chars, { maxLength: 64, trainOnPrompt: false });
    assert.equal(decode(ex.inputIds), '<1>Q: 2+2? 4<2>');
    assert.equal(trainedText(ex), ' 4<2>');
    assert.equal(ex.labels.filter((l) => l === IGNORE_INDEX).length, 1 + 'Q: 2+2?'.length);
  });

  it('train_on_prompt trains on every token but BOS', () => {
    const ex = tokenizeRecord({ prompt: 'ab', completion: 'c' }, 'completion', chars, { maxLength: 64, trainOnPrompt: true });
    assert.equal(trainedText(ex), '<1>abc<2>');
  });

  it('text trains on everything; alpaca wraps the instruction in the Alpaca prompt', () => {
    assert.equal(trainedText(tokenizeRecord({ text: 'call me Ishmael' }, 'text', chars, { maxLength: 64, trainOnPrompt: false })), 'call me Ishmael<2>');
    const alpaca = tokenizeRecord({ instruction: 'Add.', input: '1 1', output: '2' }, 'alpaca', chars, { maxLength: 512, trainOnPrompt: false });
    assert.match(decode(alpaca.inputIds), /### Instruction:\nAdd\.\n\n### Input:\n1 1\n\n### Response:\n2<2>$/);
    assert.equal(trainedText(alpaca), '2<2>');
  });

  it('chat: the model’s template renders the conversation; only assistant turns are trained', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Bye' },
      { role: 'assistant', content: 'Bye.' },
    ];
    const ex = tokenizeRecord({ messages }, 'chat', chars, { maxLength: 512, trainOnPrompt: false });
    assert.equal(decode(ex.inputIds), `<1>${new Template(CHATML).render({ messages, add_generation_prompt: false })}<2>`);
    assert.equal(trainedText(ex), 'Hello.<|im_end|>\nBye.<|im_end|>\n<2>');
  });

  it('truncates to max_length', () => {
    const ex = tokenizeRecord({ text: 'abcdefghij' }, 'text', chars, { maxLength: 4, trainOnPrompt: false });
    assert.equal(ex.inputIds.length, 4);
    assert.equal(ex.labels.length, 4);
  });

  it('reads JSONL and JSON arrays; a bad line names the file, line and missing field, and the load refuses', async () => {
    const jsonl = await file('t.jsonl', '{"prompt": "a", "completion": "b"}\n\n{"prompt": "c"}\n{"prompt": "d", "completion": 5}\nnot json\n');
    await assert.rejects(loadExamples(jsonl, chars, { format: 'completion', maxLength: 16, trainOnPrompt: false }), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.match(error.message, /t\.jsonl:5: invalid JSON/);
      return true;
    });
    const fields = await file('f.jsonl', '{"prompt": "a", "completion": "b"}\n\n{"prompt": "c"}\n{"prompt": "d", "completion": 5}\n');
    await assert.rejects(loadExamples(fields, chars, { format: 'completion', maxLength: 16, trainOnPrompt: false }), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.match(error.message, /f\.jsonl:3: missing field "completion" \(format completion needs prompt, completion; this line has prompt\)/);
      assert.match(error.message, /f\.jsonl:4: field "completion" must be a string, got 5/);
      return true;
    });
    const array = await file('a.json', JSON.stringify([{ text: 'x' }, { text: 'y' }]));
    assert.equal((await loadExamples(array, chars, { format: 'text', maxLength: 16, trainOnPrompt: false })).length, 2);
    await assert.rejects(readRecords(await file('o.json', '{"text": "x"}')), /must be an array of objects; use \.jsonl/);
    await assert.rejects(readRecords(join(dir, 'absent.jsonl')), /absent\.jsonl: cannot read the dataset: no such file \(ENOENT\)/);
    await assert.rejects(readRecords(await file('empty.jsonl', '\n\n')), /empty\.jsonl: no examples/);
  });

  it('names a record that is not an object by its kind, never quoting the line, and describes a field nested too deeply to print (quoting it overflowed the stack)', async () => {
    const long = await file('long.jsonl', `"${'x'.repeat(500)}"\n`);
    await assert.rejects(readRecords(long), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${long}:1: expected a JSON object, got a string`]);
      return true;
    });
    const deep = await file('deep.jsonl', `{"prompt": "a", "completion": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}\n`);
    await assert.rejects(loadExamples(deep, chars, { format: 'completion', maxLength: 16, trainOnPrompt: false }), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${deep}:1: field "completion" must be a string, got an object nested too deeply to show`]);
      return true;
    });
  });

  it('reads a line at a time: a line over the record limit is refused with its file, line and the limit, the lines around it still read', async () => {
    const huge = JSON.stringify({ text: 'x'.repeat(MAX_RECORD_BYTES) });
    const path = await file('huge.jsonl', `{"text": "a"}\n${huge}\n{"text": "b"}\n5\n`);
    await assert.rejects(readRecords(path), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${path}:2: the line is longer than 8 MiB, the limit for one line; split or shorten it`, `${path}:4: expected a JSON object, got a number`]);
      return true;
    });
    const big = JSON.stringify({ text: 'y'.repeat(2 * 1024 ** 2) });
    assert.equal((await readRecords(await file('big.jsonl', `${big}\n{"text": "b"}\n`))).length, 2, 'a 2 MiB record is a record');
  });

  it('refuses what is not a regular file without waiting on it: a FIFO, /dev/zero, a folder', { timeout: 10_000 }, async () => {
    const fifo = join(dir, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    await assert.rejects(readRecords(fifo), new RegExp(`^DatasetError: ${fifo}: is a FIFO \\(named pipe\\), not a regular file; the dataset must be a file$`));
    await assert.rejects(readRecords('/dev/zero'), /^DatasetError: \/dev\/zero: is a character device, not a regular file; the dataset must be a file$/);
    await assert.rejects(readRecords(dir), /is a folder, not a regular file/);
  });

  it('refuses invalid UTF-8 with its file, line and byte, in JSONL and JSON', async () => {
    const jsonl = join(dir, 'latin1.jsonl');
    await writeFile(jsonl, Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    await assert.rejects(readRecords(jsonl), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${jsonl}:2: byte 14 (0xe9) is not valid UTF-8; save the file as UTF-8`]);
      return true;
    });
    const json = join(dir, 'latin1.json');
    await writeFile(json, Buffer.concat([Buffer.from('[\n{"text": "a"},\n{"text": "'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}]')]));
    await assert.rejects(readRecords(json), new RegExp(`${json}:3: byte 11 \\(0xc0\\) is not valid UTF-8`));
    const bom = await file('bom.jsonl', '\ufeff{"text": "a"}\n');
    assert.deepEqual((await readRecords(bom)).map((r) => r.value), [{ text: 'a' }], 'a byte-order mark is not part of the first record');
  });

  it('refuses records with nothing to train on: an empty text, completion, output or assistant turn', async () => {
    const path = await file('blank.jsonl', ['{"prompt": "a", "completion": ""}', '{"prompt": "", "completion": "b"}'].join('\n'));
    await assert.rejects(loadExamples(path, chars, { format: 'completion', maxLength: 16, trainOnPrompt: false }), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${path}:1: field "completion" is empty, so the record has nothing to train on; fill it in or remove the record`]);
      return true;
    });
    const text = await file('blank-text.jsonl', '{"text": ""}\n');
    await assert.rejects(loadExamples(text, chars, { format: 'text', maxLength: 16, trainOnPrompt: false }), /blank-text\.jsonl:1: field "text" is empty/);
    const own = await file('blank-own.jsonl', '{"q": "a", "a": ""}\n');
    await assert.rejects(loadExamples(own, chars, { format: 'completion', maxLength: 16, trainOnPrompt: false, fields: { prompt: 'q', completion: 'a' } }), /blank-own\.jsonl:1: field "a" \(data\.fields\.completion\) is empty/);
    const chat = await file('blank-chat.jsonl', `${JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: '' }] })}\n`);
    await assert.rejects(loadExamples(chat, chars, { format: 'chat', maxLength: 64, trainOnPrompt: false }), /blank-chat\.jsonl:1: every assistant message is empty/);
  });

  it('refuses a token id past the model\'s vocabulary (a tokenizer of another model), naming the line', async () => {
    const path = await file('vocab.jsonl', '{"text": "ab"}\n{"text": "a\u00ff"}\n');
    // chars gives code point + 10: "a" 107, "b" 108, "ÿ" 265
    assert.equal((await loadExamples(path, chars, { format: 'text', maxLength: 16, trainOnPrompt: false, vocabSize: 266 })).length, 2);
    await assert.rejects(loadExamples(path, chars, { format: 'text', maxLength: 16, trainOnPrompt: false, vocabSize: 200 }), (error: unknown) => {
      assert.ok(error instanceof DatasetError);
      assert.deepEqual(error.problems, [`${path}:2: token id 265 is past the model's vocabulary of 200 (config.json's vocab_size); the tokenizer is not this model's`]);
      return true;
    });
  });

  it('data.fields maps the dataset’s own field names; a missing mapped field is named as the dataset names it', async () => {
    const path = await file('own.jsonl', `${JSON.stringify({ question: 'Q?', answer: ' A' })}\n${JSON.stringify({ question: 'R?' })}\n`);
    const options = { format: 'completion' as const, maxLength: 32, trainOnPrompt: false, fields: { prompt: 'question', completion: 'answer' } };
    await assert.rejects(loadExamples(path, chars, options), /own\.jsonl:2: missing field "answer" \(data\.fields\.completion\)/);
    const good = await file('own2.jsonl', `${JSON.stringify({ question: 'Q?', answer: ' A' })}\n`);
    const [example] = await loadExamples(good, chars, options);
    assert.equal(decode(example!.inputIds), '<1>Q? A<2>');
    assert.equal(trainedText(example!), ' A<2>');
  });

  it('refuses examples whose prompt leaves nothing to train on', async () => {
    const path = await file('long.jsonl', `${JSON.stringify({ prompt: 'x'.repeat(40), completion: 'y' })}\n`);
    await assert.rejects(loadExamples(path, chars, { format: 'completion', maxLength: 8, trainOnPrompt: false }), /long\.jsonl:1: the prompt fills all 8 tokens/);
  });

  it('multiple-choice records: choices and an answer index, validated', async () => {
    const ok = await readRecords(await file('mc.jsonl', '{"prompt": "2+2=", "choices": ["3", "4"], "answer": 1}\n'));
    assert.deepEqual(choiceExamples('mc.jsonl', ok), [{ prompt: '2+2=', choices: ['3', '4'], answer: 1 }]);
    const bad = await readRecords(await file('mc2.jsonl', '{"prompt": "p", "choices": ["a", "b"], "answer": 2}\n'));
    assert.throws(() => choiceExamples('mc2.jsonl', bad), /mc2\.jsonl:1: "answer" must be an index into choices \(0\.\.1\), got 2/);
    assert.equal(choiceExamples('x', [{ line: 1, value: { text: 't' } }]), null);
    const asCompletion = tokenizeRecord({ prompt: 'Q', choices: ['no', 'yes'], answer: 1 }, 'completion', chars, { maxLength: 32, trainOnPrompt: false });
    assert.equal(trainedText(asCompletion), 'yes<2>', 'a multiple-choice record trains on its right answer');
  });

  it('batches: seeded shuffle per epoch, padding with -100 labels, packing into full rows', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ inputIds: Array(i + 1).fill(i + 10), labels: Array(i + 1).fill(i + 10) }));
    const a = epochBatches(rows, 4, 7, 0, 0);
    assert.deepEqual(epochBatches(rows, 4, 7, 0, 0), a, 'same seed and epoch, same batches');
    assert.notDeepEqual(epochBatches(rows, 4, 7, 1, 0), a, 'another epoch, another order');
    assert.deepEqual(a.map((b) => b.inputIds.length), [4, 4, 2]);
    const batch = collate([{ inputIds: [5, 6, 7], labels: [IGNORE_INDEX, 6, 7] }, { inputIds: [8], labels: [8] }], 0);
    assert.deepEqual(batch.inputIds, [[5, 6, 7], [8, 0, 0]]);
    assert.deepEqual(batch.labels, [[IGNORE_INDEX, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]);
    assert.equal(batch.targetTokens, 2, "6 and 7; the second row's 8 comes first and is never predicted");
    const packed = pack(rows.slice(0, 4), 4);
    assert.deepEqual(packed.map((r) => r.inputIds.length), [4, 4, 2]);
    assert.deepEqual(packed[0]!.inputIds, [10, 11, 11, 12]);
    const split = splitExamples(rows, 0.2, 3);
    assert.equal(split.eval.length, 2);
    assert.equal(split.train.length + split.eval.length, 10);
    assert.deepEqual(splitExamples(rows, 0.2, 3), split);
  });
});
