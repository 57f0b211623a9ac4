// A model folder's tokenizer: tokenizer.json + tokenizer_config.json through
// @huggingface/tokenizers, and the chat template of tokenizer_config.json through @huggingface/jinja.

import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { FileReadError, jsonErrorPlace, jsonProblem, readTextFile } from '../formats/files';
import { kindOf, preview } from '../formats/preview';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** The largest tokenizer files read: tokenizer.json of a 256k-token vocabulary is some 35 MB. */
const MAX_BYTES: Record<string, number> = { [TOKENIZER_FILE]: 128 * 1024 ** 2, [TOKENIZER_CONFIG_FILE]: 16 * 1024 ** 2 };
const TOKENIZER_MODELS = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'];

export interface ChatMessage {
  role: string;
  content: string;
}

export class TokenizerError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'TokenizerError';
  }
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readJson(file: string, what: string): Promise<Json> {
  let text: string;
  try {
    const name = file.slice(file.lastIndexOf('/') + 1);
    text = await readTextFile(file, name, MAX_BYTES[name] ?? MAX_BYTES[TOKENIZER_CONFIG_FILE]!, 'the largest vocabularies take a few tens of MB');
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    const missing = (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw new TokenizerError(error.path, `${error.problem}${missing && what ? `; ${what}` : ''}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(`${file}${jsonErrorPlace(text, error)}`, `is not valid JSON: ${jsonProblem(error)}`);
  }
  if (!isObject(json)) throw new TokenizerError(file, 'must be a JSON object');
  return json;
}

const isTokenId = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * What a tokenizer.json lacks of the shape @huggingface/tokenizers reads without checking (its
 * "model" with a vocabulary, BPE's merges, the added tokens, the pipeline's parts), as
 * `"key" problem`; null when nothing is amiss. The library fails on these with a TypeError that
 * names no key ("Cannot read properties of undefined"). Entries are named by their index and
 * values by their kind, never quoted: they are the file's content.
 */
export function tokenizerJsonProblem(json: Json): string | null {
  const fail = (key: string, problem: string) => `"${key}" ${problem}; the file is not a tokenizers file, or it is corrupt`;
  const model = json.model;
  if (!isObject(model)) return fail('model', `must be an object (the tokenizer model: its type and vocabulary), got ${kindOf(model)}`);
  const { vocab, merges } = model;
  if (model.type !== undefined && !TOKENIZER_MODELS.includes(model.type as string)) return fail('model.type', `must be one of ${TOKENIZER_MODELS.join(', ')}, got ${kindOf(model.type) === 'a string' ? 'another' : kindOf(model.type)}`);
  if (model.type === 'Unigram' || Array.isArray(vocab)) {
    const pair = (entry: unknown) => Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number';
    if (!Array.isArray(vocab)) return fail('model.vocab', `must list [piece, score] pairs (a Unigram model), got ${kindOf(vocab)}`);
    const bad = vocab.findIndex((entry) => !pair(entry));
    if (bad >= 0) return fail(`model.vocab[${bad}]`, `must be a [piece, score] pair, got ${kindOf(vocab[bad])}`);
  } else {
    if (!isObject(vocab)) return fail('model.vocab', `must map each token to its id, got ${kindOf(vocab)}`);
    const ids = Object.values(vocab);
    const bad = ids.findIndex((id) => !isTokenId(id));
    if (bad >= 0) return fail('model.vocab', `token number ${bad} must map to a token id (a non-negative integer), got ${kindOf(ids[bad]) === 'a number' ? 'another number' : kindOf(ids[bad])}`);
  }
  if (model.type === 'BPE' || merges !== undefined) {
    const merge = (entry: unknown) =>
      (typeof entry === 'string' && entry.split(' ').length === 2) || (Array.isArray(entry) && entry.length === 2 && entry.every((part) => typeof part === 'string'));
    if (!Array.isArray(merges)) return fail('model.merges', `must list the BPE merges, got ${kindOf(merges)}`);
    const bad = merges.findIndex((entry) => !merge(entry));
    if (bad >= 0) return fail(`model.merges[${bad}]`, `must be a merge, "a b" or ["a", "b"], got ${kindOf(merges[bad])}`);
  }
  const added = json.added_tokens;
  if (!Array.isArray(added)) return fail('added_tokens', `must be a list (empty when the tokenizer adds none), got ${kindOf(added)}`);
  const bad = added.findIndex((token) => !isObject(token) || !isTokenId(token.id) || typeof token.content !== 'string');
  if (bad >= 0) return fail(`added_tokens[${bad}]`, `must be an object with a token id "id" and a string "content", got ${kindOf(added[bad])}`);
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    const value = json[key];
    if (value !== undefined && value !== null && !(isObject(value) && typeof value.type === 'string')) return fail(key, `must be null or an object with a "type", got ${kindOf(value)}`);
  }
  return null;
}

/**
 * Checks a model folder's tokenizer files as far as the editor can afford on every change: both
 * read and parsed, tokenizer.json's shape (tokenizerJsonProblem), an eos_token named. Building the
 * tokenizer (what load adds: the vocabulary lookups) takes a second for a large vocabulary, so it
 * is left to training. Throws TokenizerError; a folder without tokenizer.json passes (the
 * editor does not require one).
 */
export async function checkTokenizerFiles(modelDir: string): Promise<void> {
  const tokenizerFile = join(modelDir, TOKENIZER_FILE);
  let tokenizerJson: Json;
  try {
    tokenizerJson = await readJson(tokenizerFile, '');
  } catch (error) {
    if (error instanceof TokenizerError && /\(ENOENT\)/.test(error.problem)) return;
    throw error;
  }
  const shape = tokenizerJsonProblem(tokenizerJson);
  if (shape) throw new TokenizerError(tokenizerFile, shape);
  const configFile = join(modelDir, TOKENIZER_CONFIG_FILE);
  const config = await readJson(configFile, 'the model folder needs tokenizer_config.json beside tokenizer.json');
  if (specialToken(config, 'eos_token', configFile) === null) throw new TokenizerError(configFile, '"eos_token" is missing; training and generation need an end-of-sequence token');
}

/** A special token as tokenizer_config.json gives it: a string, or an AddedToken object with "content". */
function specialToken(config: Json, key: string, file: string): string | null {
  const value = config[key];
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  throw new TokenizerError(file, `"${key}" must be a string or an object with "content", got ${preview(value)}`);
}

/** tokenizer_config.json's "chat_template": one template, or named ones of which "default" is used. */
function chatTemplateOf(config: Json, file: string): string | null {
  const value = config.chat_template;
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => typeof t === 'object' && t !== null && (t as Json).name === 'default');
    if (named && typeof (named as Json).template === 'string') return (named as Json).template as string;
  }
  throw new TokenizerError(file, `"chat_template" must be a string or a list holding {"name": "default", "template": ...}, got ${preview(value, 80)}`);
}

export class ModelTokenizer {
  private template: Template | null = null;

  private constructor(
    readonly dir: string,
    private readonly tokenizer: Tokenizer,
    /** The special tokens by their tokenizer_config.json key (bos_token, eos_token, …). */
    readonly specialTokens: Readonly<Record<string, string | null>>,
    readonly bosTokenId: number | null,
    readonly eosTokenId: number,
    /** The pad token, or the EOS token for models without one (as fine-tuning scripts commonly set it). */
    readonly padTokenId: number,
    readonly chatTemplate: string | null,
  ) {}

  static async load(modelDir: string): Promise<ModelTokenizer> {
    const tokenizerFile = join(modelDir, TOKENIZER_FILE);
    const configFile = join(modelDir, TOKENIZER_CONFIG_FILE);
    const tokenizerJson = await readJson(tokenizerFile, 'the model folder needs the fast-tokenizer file tokenizer.json (save it with transformers: tokenizer.save_pretrained(dir))');
    const config = await readJson(configFile, 'the model folder needs tokenizer_config.json beside tokenizer.json');
    const shape = tokenizerJsonProblem(tokenizerJson);
    if (shape) throw new TokenizerError(tokenizerFile, shape);
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (error) {
      // The library's own checks word their errors ("Unknown Normalizer type: …"); a TypeError is a shape it did not expect.
      const message = error instanceof TypeError ? `the tokenizers library cannot read it (${error.message}); is it a complete tokenizer.json, as transformers saves it?` : (error as Error).message;
      throw new TokenizerError(tokenizerFile, `cannot build the tokenizer: ${message}`);
    }
    const specialTokens = Object.fromEntries(
      ['bos_token', 'eos_token', 'unk_token', 'pad_token'].map((key) => [key, specialToken(config, key, configFile)]),
    );
    const idOf = (key: string): number | null => {
      const token = specialTokens[key];
      if (token === null || token === undefined) return null;
      const id = tokenizer.token_to_id(token);
      if (id === undefined) throw new TokenizerError(configFile, `"${key}" ${preview(token)} is not in the vocabulary of ${TOKENIZER_FILE}`);
      return id;
    };
    const eosTokenId = idOf('eos_token');
    if (eosTokenId === null) throw new TokenizerError(configFile, '"eos_token" is missing; training and generation need an end-of-sequence token');
    const chatTemplate = chatTemplateOf(config, configFile);
    return new ModelTokenizer(modelDir, tokenizer, specialTokens, idOf('bos_token'), eosTokenId, idOf('pad_token') ?? eosTokenId, chatTemplate);
  }

  /** Token ids of `text`; special tokens (BOS, …) only if asked for, as the tokenizer's post-processor adds them. */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The chat template rendered to text, as transformers' apply_chat_template(tokenize=False). */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    if (this.chatTemplate === null) {
      throw new TokenizerError(
        join(this.dir, TOKENIZER_CONFIG_FILE),
        'has no "chat_template", so chat data cannot be formatted for this model; use a chat (instruct) model, add a template, or use the "text" or "completion" data format',
      );
    }
    try {
      this.template ??= new Template(this.chatTemplate);
      return this.template.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.specialTokens });
    } catch (error) {
      throw new TokenizerError(join(this.dir, TOKENIZER_CONFIG_FILE), `"chat_template" cannot be rendered: ${(error as Error).message}`);
    }
  }
}
