// A model folder's tokenizer: tokenizer.json + tokenizer_config.json through
// @huggingface/tokenizers, and the chat template of tokenizer_config.json through @huggingface/jinja.

import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { FileReadError, jsonProblem, readSmallFile } from './read-file';

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

/** A value's kind, for an error: never the value, which is the file's content. */
function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

async function readJson(file: string, what: string): Promise<Json> {
  let text: string;
  try {
    const name = file.slice(file.lastIndexOf('/') + 1);
    text = await readSmallFile(file, MAX_BYTES[name] ?? MAX_BYTES[TOKENIZER_CONFIG_FILE]!, name, 'the largest vocabularies take a few tens of MB');
  } catch (error) {
    if (!(error instanceof FileReadError)) throw error;
    throw new TokenizerError(file, error.code ? `cannot be read (${error.code}); ${what}` : error.problem);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(file, `is not valid JSON: ${jsonProblem(error, text)}`);
  }
  if (!isObject(json)) throw new TokenizerError(file, 'must be a JSON object');
  return json;
}

/**
 * What a tokenizer.json lacks of the shape the tokenizers library reads (its "model" with a
 * vocabulary, BPE's merges, the added tokens), as `"key": problem`; null when nothing is amiss.
 * The library itself would fail on these with a TypeError that names no key.
 */
export function tokenizerJsonProblem(json: Json): string | null {
  const model = json.model;
  if (!isObject(model)) return `"model" must be an object with the tokenizer's "type" and "vocab", got ${kindOf(model)}`;
  if (model.type !== undefined && !TOKENIZER_MODELS.includes(model.type as string)) {
    return `"model.type" must be one of ${TOKENIZER_MODELS.join(', ')}`;
  }
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    const bad = vocab.findIndex((entry) => !Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number');
    if (bad >= 0) return `"model.vocab" entry ${bad} must be [token, score] (a Unigram vocabulary)`;
  } else if (isObject(vocab)) {
    const bad = Object.entries(vocab).find(([, id]) => !Number.isSafeInteger(id) || (id as number) < 0);
    if (bad) return `"model.vocab" must map tokens to ids (integers ≥ 0); token number ${Object.keys(vocab).indexOf(bad[0])} maps to ${kindOf(bad[1]) === 'a number' ? 'a number that is not' : kindOf(bad[1])}`;
  } else {
    return `"model.vocab" must be an object of token → id, or a list of [token, score] (Unigram), got ${kindOf(vocab)}`;
  }
  if (model.type === 'BPE' || model.merges !== undefined) {
    const merges = model.merges;
    if (!Array.isArray(merges)) return '"model.merges" must be a list of merges ("a b" or ["a", "b"]); a BPE tokenizer needs them';
    const bad = merges.findIndex((merge) => !(typeof merge === 'string' ? merge.includes(' ') : Array.isArray(merge) && merge.length === 2 && merge.every((part) => typeof part === 'string')));
    if (bad >= 0) return `"model.merges" entry ${bad} must be "a b" or ["a", "b"]`;
  }
  if (json.added_tokens !== undefined && json.added_tokens !== null) {
    if (!Array.isArray(json.added_tokens)) return '"added_tokens" must be a list of {"id", "content"}';
    const bad = json.added_tokens.findIndex((token) => !isObject(token) || !Number.isSafeInteger(token.id) || typeof token.content !== 'string');
    if (bad >= 0) return `"added_tokens" entry ${bad} must have an integer "id" and a string "content"`;
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
  throw new TokenizerError(file, `"${key}" must be a string or an object with "content", got ${JSON.stringify(value)}`);
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
  throw new TokenizerError(file, `"chat_template" must be a string or a list holding {"name": "default", "template": ...}, got ${JSON.stringify(value).slice(0, 80)}`);
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
      if (id === undefined) throw new TokenizerError(configFile, `"${key}" ${JSON.stringify(token)} is not in the vocabulary of ${TOKENIZER_FILE}`);
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
    this.template ??= new Template(this.chatTemplate);
    return this.template.render({ messages, add_generation_prompt: addGenerationPrompt, ...this.specialTokens });
  }
}
