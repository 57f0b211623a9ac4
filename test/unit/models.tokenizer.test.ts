// The reference fixtures' tokenizers (server/models/tokenizer.ts): transformers' ids for the
// reference texts, special tokens, the chat template, and missing files named.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { DataTokenizer } from '../../server/engine/data';
import { ModelTokenizer, TokenizerError } from '../../server/models/tokenizer';

const FIXTURES = join(__dirname, '..', 'fixtures', 'models');

interface Reference {
  texts: string[];
  text_ids: number[][];
  generated_greedy: { prompt: string; prompt_ids: number[] };
}

async function copyOf(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenizer-test-'));
  await cp(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

describe('tokenizer', () => {
  for (const name of ['tiny-llama', 'tiny-qwen2', 'tiny-gpt2']) {
    it(`${name}: encodes the reference texts to transformers' ids and decodes them back`, async () => {
      const dir = join(FIXTURES, name);
      const ref = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Reference;
      const tokenizer = await ModelTokenizer.load(dir);
      ref.texts.forEach((text, i) => {
        const ids = tokenizer.encode(text);
        assert.deepEqual(ids, ref.text_ids[i], `text ${i}: ${JSON.stringify(text)}`);
        assert.equal(tokenizer.decode(ids), text);
      });
      assert.deepEqual(tokenizer.encode(ref.generated_greedy.prompt), ref.generated_greedy.prompt_ids);
    });
  }

  it('reads the special tokens of tokenizer_config.json and serves the data pipeline', async () => {
    const tokenizer: DataTokenizer = await ModelTokenizer.load(join(FIXTURES, 'tiny-llama'));
    assert.deepEqual([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId], [508, 508, 511]);
    const special = (tokenizer as ModelTokenizer).encode('a<pad>b<|endoftext|>');
    assert.equal((tokenizer as ModelTokenizer).decode(special, { skipSpecialTokens: true }), 'ab');
  });

  it('renders the chat template of tokenizer_config.json', async () => {
    const tokenizer = await ModelTokenizer.load(join(FIXTURES, 'tiny-qwen2'));
    const messages = [
      { role: 'user', content: 'Hello there!' },
      { role: 'assistant', content: 'Ahoy.' },
    ];
    assert.equal(tokenizer.applyChatTemplate(messages.slice(0, 1), true), '<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(tokenizer.applyChatTemplate(messages, false), '<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\nAhoy.<|im_end|>\n');
  });

  it('says clearly when the model has no chat template', async () => {
    const dir = await copyOf('tiny-gpt2');
    try {
      const configFile = join(dir, 'tokenizer_config.json');
      const { chat_template: _, ...config } = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
      await writeFile(configFile, JSON.stringify(config));
      const tokenizer = await ModelTokenizer.load(dir);
      assert.equal(tokenizer.chatTemplate, null);
      assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], true), (error: Error) => {
        assert.ok(error instanceof TokenizerError);
        assert.ok(error.message.startsWith(`${configFile}: has no "chat_template"`), error.message);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the key of a corrupt tokenizer.json, and a chat template that cannot render', async () => {
    const dir = await copyOf('tiny-gpt2');
    try {
      const file = join(dir, 'tokenizer.json');
      const json = JSON.parse(await readFile(file, 'utf8')) as { model: Record<string, unknown>; added_tokens: unknown };
      const corrupt = async (change: (copy: typeof json) => void, expected: RegExp) => {
        const copy = structuredClone(json);
        change(copy);
        await writeFile(file, JSON.stringify(copy));
        await assert.rejects(ModelTokenizer.load(dir), (error: unknown) => {
          assert.ok(error instanceof TokenizerError);
          assert.equal(error.file, file);
          assert.match(error.problem, expected);
          return true;
        });
      };
      await corrupt((t) => delete t.model.merges, /^"model\.merges" must list the BPE merges, got nothing; the file is not a tokenizers file, or it is corrupt$/);
      await corrupt((t) => (t.model.vocab = { a: 0, b: 'one' }), /^"model\.vocab" token number 1 must map to a token id \(a non-negative integer\), got a string;/);
      await corrupt((t) => (t.added_tokens = [{ id: -1, content: '<x>' }]), /^"added_tokens\[0\]" must be an object with a token id "id" and a string "content"/);
      await corrupt((t) => ((t as Record<string, unknown>).model = null), /^"model" must be an object/);
      await writeFile(file, JSON.stringify(json));
      const configFile = join(dir, 'tokenizer_config.json');
      const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
      await writeFile(configFile, JSON.stringify({ ...config, chat_template: '{% for m in messages %}{{ m.content' }));
      const tokenizer = await ModelTokenizer.load(dir);
      assert.throws(() => tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }], true), new RegExp(`^TokenizerError: ${configFile}: "chat_template" cannot be rendered: `));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the missing file, and an eos_token that is not in the vocabulary', async () => {
    const dir = await copyOf('tiny-gpt2');
    try {
      const configFile = join(dir, 'tokenizer_config.json');
      const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
      await writeFile(configFile, JSON.stringify({ ...config, eos_token: '</s>' }));
      await assert.rejects(ModelTokenizer.load(dir), new RegExp(`^TokenizerError: ${configFile}: "eos_token" "</s>" is not in the vocabulary`));
      await rm(join(dir, 'tokenizer.json'));
      await assert.rejects(ModelTokenizer.load(dir), /tokenizer\.json: cannot read tokenizer\.json: no such file \(ENOENT\); .* tokenizer\.save_pretrained/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
