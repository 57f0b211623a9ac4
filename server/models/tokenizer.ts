// A model folder's tokenizer: tokenizer.json + tokenizer_config.json through
// @huggingface/tokenizers, and the chat template of tokenizer_config.json through @huggingface/jinja.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

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

async function readJson(file: string, what: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TokenizerError(file, `cannot be read (${(error as Error).message}); ${what}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(file, `is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TokenizerError(file, 'must be a JSON object');
  return json as Json;
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
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (error) {
      throw new TokenizerError(tokenizerFile, `cannot build the tokenizer: ${(error as Error).message}`);
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
