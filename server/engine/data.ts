// Datasets: JSONL or JSON-array files → tokenized examples with labels (-100 on the prompt unless
// train_on_prompt) → seeded, shuffled, padded or packed batches. A bad line stops the run before
// it starts, with the file, the line and what is missing.
import seedrandom from 'seedrandom';
import { FileReadError, jsonErrorPlace, jsonProblem, readLines, readTextFile, type FileLine } from '../formats/files';
import { kindOf, preview } from '../formats/preview';
import type { DATA_FORMATS } from '../config/schema';
import { IGNORE_INDEX } from '../models/model';
import type { ChatMessage } from '../models/tokenizer';

export type DataFormat = (typeof DATA_FORMATS)[number];


/** What the data pipeline needs from a model's tokenizer. */
export interface DataTokenizer {
  /** Token ids of `text`, without special tokens. */
  encode(text: string): number[];
  readonly bosTokenId: number | null;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  /** The model's chat template rendered to text; throws if the model has none. */
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt: boolean): string;
}

export interface DataRecord {
  /** 1-based line in a JSONL file, or 1-based position in a JSON array. */
  line: number;
  value: Record<string, unknown>;
}

export interface TokenizedExample {
  inputIds: number[];
  labels: number[];
}

export interface Batch {
  inputIds: number[][];
  labels: number[][];
  /** Tokens the loss predicts: labelled (≠ -100), and not a row's first (nothing comes before it). */
  targetTokens: number;
}

export interface ChoiceExample {
  prompt: string;
  choices: string[];
  answer: number;
}

export class DatasetError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    const shown = problems.slice(0, 10);
    const more = problems.length > shown.length ? `\n… and ${problems.length - shown.length} more` : '';
    super(`${shown.join('\n')}${more}`);
    this.name = 'DatasetError';
  }
}

/** The field whose text a record trains on (chat: its assistant messages). */
const TRAINED_FIELD: Record<Exclude<DataFormat, 'chat'>, string> = { text: 'text', completion: 'completion', alpaca: 'output' };

const REQUIRED_FIELDS: Record<DataFormat, string[]> = {
  text: ['text'],
  completion: ['prompt', 'completion'],
  alpaca: ['instruction', 'output'],
  chat: ['messages'],
};

/** The longest line (one record) of a .jsonl dataset: data.max_length keeps only a record's first tokens anyway. */
export const MAX_RECORD_BYTES = 8 * 1024 ** 2;
/** The largest .json dataset (one array, read whole); larger data belongs in .jsonl, read a line at a time. */
export const MAX_JSON_DATASET_BYTES = 256 * 1024 ** 2;
/** Reading stops after this many bad lines: enough to show what is wrong. */
const MAX_PROBLEMS = 100;

/** A record, or why the line (or array entry) is not one; `line` is 1-based. */
export type ScannedRecord = DataRecord | { line: number; problem: string };

function scanned(value: unknown, line: number): ScannedRecord {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return { line, value: value as Record<string, unknown> };
  return { line, problem: `expected a JSON object, got ${kindOf(value)}` };
}

/**
 * The records of a .jsonl file (one JSON object per line, blank lines skipped) or a .json file
 * (an array of objects), the first `limit` of them when a limit is given, each with its line, or
 * why it is not one. Throws a DatasetError for a file that cannot be read at all: missing, not
 * a regular file, a .json over MAX_JSON_DATASET_BYTES or not an array.
 */
export async function* scanRecords(file: string, limit = Infinity): AsyncGenerator<ScannedRecord> {
  const refuse = (error: unknown): never => {
    throw new DatasetError(file, [error instanceof FileReadError ? error.message : `${file}: cannot read the dataset (${(error as Error).message})`]);
  };
  if (file.endsWith('.json')) {
    let text: string;
    try {
      text = await readTextFile(file, 'the dataset', MAX_JSON_DATASET_BYTES, 'give a larger dataset as .jsonl, one record per line');
    } catch (error) {
      return refuse(error);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new DatasetError(file, [`${file}${jsonErrorPlace(text, error)}: invalid JSON (${jsonProblem(error)})`]);
    }
    if (!Array.isArray(parsed)) throw new DatasetError(file, [`${file}: a .json dataset must be an array of objects; use .jsonl for one object per line`]);
    for (const [i, value] of parsed.slice(0, Math.min(parsed.length, limit)).entries()) yield scanned(value, i + 1);
    return;
  }
  let lines: AsyncGenerator<FileLine>;
  try {
    lines = readLines(file, 'the dataset', MAX_RECORD_BYTES);
    let seen = 0;
    for await (const read of lines) {
      if ('problem' in read) {
        yield read;
      } else {
        const text = read.text.trim();
        if (!text) continue;
        try {
          yield scanned(JSON.parse(text), read.line);
        } catch (error) {
          yield { line: read.line, problem: `invalid JSON (${jsonProblem(error, text)})` };
        }
      }
      if (++seen >= limit) return;
    }
  } catch (error) {
    if (error instanceof DatasetError) throw error;
    refuse(error);
  }
}

/** Reads every record of a dataset file (scanRecords); throws a DatasetError naming each bad line. */
export async function readRecords(file: string): Promise<DataRecord[]> {
  const problems: string[] = [];
  const records: DataRecord[] = [];
  for await (const record of scanRecords(file)) {
    if ('value' in record) {
      records.push(record);
      continue;
    }
    problems.push(`${file}:${record.line}: ${record.problem}`);
    if (problems.length >= MAX_PROBLEMS) {
      problems.push(`${file}: stopped reading at line ${record.line} after ${MAX_PROBLEMS} bad lines`);
      break;
    }
  }
  if (problems.length) throw new DatasetError(file, problems);
  if (records.length === 0) throw new DatasetError(file, [`${file}: no examples (the file holds no records)`]);
  return records;
}

/** A multiple-choice record ({prompt, choices, answer}) trains and evaluates on its right answer. */
function isChoiceRecord(value: Record<string, unknown>): boolean {
  return 'choices' in value && 'answer' in value && !('completion' in value);
}

function fieldProblem(file: string, record: DataRecord, format: DataFormat): string | null {
  const where = `${file}:${record.line}`;
  if (format === 'completion' && isChoiceRecord(record.value)) return choiceProblem(file, record);
  for (const field of REQUIRED_FIELDS[format]) {
    if (!(field in record.value)) {
      return `${where}: missing field "${field}" (format ${format} needs ${REQUIRED_FIELDS[format].join(', ')}; this line has ${Object.keys(record.value).join(', ') || 'no fields'})`;
    }
  }
  if (format === 'chat') {
    const messages = record.value.messages;
    if (!Array.isArray(messages) || messages.length === 0) return `${where}: "messages" must be a non-empty list of {role, content}`;
    const bad = messages.findIndex((m) => typeof m?.role !== 'string' || typeof m?.content !== 'string');
    if (bad >= 0) return `${where}: messages[${bad}] needs string "role" and "content"`;
    if (!messages.some((m: ChatMessage) => m.role === 'assistant')) return `${where}: no assistant message to train on`;
    if (messages.every((m: ChatMessage) => m.role !== 'assistant' || m.content === '')) return `${where}: every assistant message is empty, so the record has nothing to train on; fill them in or remove the record`;
    return null;
  }
  for (const field of [...REQUIRED_FIELDS[format], ...(format === 'alpaca' ? ['input'] : [])]) {
    if (field in record.value && typeof record.value[field] !== 'string') {
      return `${where}: field "${field}" must be a string, got ${preview(record.value[field], 80)}`;
    }
  }
  const trained = TRAINED_FIELD[format];
  if (record.value[trained] === '') return `${where}: field "${trained}" is empty, so the record has nothing to train on; fill it in or remove the record`;
  return null;
}

/** The dataset's own field names (data.fields), by the name the format reads. */
export type FieldNames = Partial<Record<string, string>>;

/**
 * Records with the dataset's own field names (data.fields) renamed to the ones the format reads.
 * A record that lacks a mapped field keeps lacking it, and the check names both.
 */
export function renameFields(records: DataRecord[], fields: FieldNames | undefined): DataRecord[] {
  const pairs = Object.entries(fields ?? {}).filter((pair): pair is [string, string] => typeof pair[1] === 'string');
  if (pairs.length === 0) return records;
  return records.map(({ line, value }) => {
    const renamed = { ...value };
    for (const [field, own] of pairs) {
      delete renamed[field];
      if (own in value) renamed[field] = value[own];
    }
    return { line, value: renamed };
  });
}

/**
 * The records with the format's field names (data.fields applied); throws a DatasetError listing
 * every record that lacks what its format needs.
 */
export function checkRecords(file: string, records: DataRecord[], format: DataFormat, fields?: FieldNames): DataRecord[] {
  const renamed = renameFields(records, fields);
  const problems = renamed
    .map((r) => fieldProblem(file, r, format))
    .filter((p): p is string => p !== null)
    .map((problem) => problem.replace(/field "(\w+)"/, (all, field: string) => (fields?.[field] ? `field "${fields[field]}" (data.fields.${field})` : all)));
  if (problems.length) throw new DatasetError(file, problems);
  return renamed;
}

// The Alpaca prompt, as the LLM-Adapters commonsense scripts the MoSLoRA reference builds on.
function alpacaPrompt(instruction: string, input: string | undefined): string {
  return input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:\n`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Response:\n`;
}

/** (text, trained?) segments of one record, in order. */
function segments(record: Record<string, unknown>, format: DataFormat, tokenizer: DataTokenizer): [string, boolean][] {
  switch (format) {
    case 'text':
      return [[record.text as string, true]];
    case 'completion': {
      const completion = isChoiceRecord(record) ? (record.choices as string[])[record.answer as number]! : (record.completion as string);
      return [
        [record.prompt as string, false],
        [completion, true],
      ];
    }
    case 'alpaca':
      return [
        [alpacaPrompt(record.instruction as string, record.input as string | undefined), false],
        [record.output as string, true],
      ];
    case 'chat': {
      // Each assistant turn is the difference between the conversation rendered with and
      // without it: only those spans are trained on.
      const messages = record.messages as ChatMessage[];
      const out: [string, boolean][] = [];
      let rendered = '';
      messages.forEach((message, i) => {
        if (message.role !== 'assistant') return;
        const before = tokenizer.applyChatTemplate(messages.slice(0, i), true);
        const after = tokenizer.applyChatTemplate(messages.slice(0, i + 1), false);
        if (!before.startsWith(rendered) || !after.startsWith(before)) {
          throw new Error('the chat template does not render conversations as growing prefixes; cannot find the assistant turns');
        }
        out.push([before.slice(rendered.length), false], [after.slice(before.length), true]);
        rendered = after;
      });
      return out;
    }
  }
}

/** Token ids and labels of one record: BOS (if the model uses one) + segments + EOS, truncated. */
export function tokenizeRecord(
  record: Record<string, unknown>,
  format: DataFormat,
  tokenizer: DataTokenizer,
  options: { maxLength: number; trainOnPrompt: boolean },
): TokenizedExample {
  const inputIds: number[] = [];
  const labels: number[] = [];
  const push = (ids: number[], trained: boolean) => {
    for (const id of ids) {
      inputIds.push(id);
      labels.push(trained || options.trainOnPrompt ? id : IGNORE_INDEX);
    }
  };
  if (tokenizer.bosTokenId !== null) push([tokenizer.bosTokenId], false);
  for (const [text, trained] of segments(record, format, tokenizer)) push(tokenizer.encode(text), trained);
  push([tokenizer.eosTokenId], true);
  return { inputIds: inputIds.slice(0, options.maxLength), labels: labels.slice(0, options.maxLength) };
}

export interface DatasetOptions {
  format: DataFormat;
  /** The model's vocabulary size: a token id the tokenizer gives at or past it is refused (the tokenizer is another model's). */
  vocabSize?: number;
  /** data.fields: the dataset's own field names. */
  fields?: FieldNames;
  maxLength: number;
  trainOnPrompt: boolean;
}

/**
 * Reads (unless its records are given, read once for another use too), checks and tokenizes a
 * whole file; examples with nothing to learn are reported.
 */
export async function loadExamples(file: string, tokenizer: DataTokenizer, options: DatasetOptions, read?: DataRecord[]): Promise<TokenizedExample[]> {
  const records = checkRecords(file, read ?? (await readRecords(file)), options.format, options.fields);
  const examples: TokenizedExample[] = [];
  const problems: string[] = [];
  for (const record of records) {
    try {
      const example = tokenizeRecord(record.value, options.format, tokenizer, options);
      const outside = options.vocabSize === undefined ? undefined : example.inputIds.find((id) => id >= options.vocabSize!);
      if (outside !== undefined) {
        problems.push(`${file}:${record.line}: token id ${outside} is past the model's vocabulary of ${options.vocabSize} (config.json's vocab_size); the tokenizer is not this model's`);
        continue;
      }
      if (example.labels.every((l) => l === IGNORE_INDEX)) {
        problems.push(`${file}:${record.line}: the prompt fills all ${options.maxLength} tokens (max_length), nothing is left to train on; raise data.max_length or shorten the prompt`);
      }
      examples.push(example);
    } catch (error) {
      problems.push(`${file}:${record.line}: ${(error as Error).message}`);
    }
  }
  if (problems.length) throw new DatasetError(file, problems);
  return examples;
}

function choiceProblem(file: string, { value, line }: DataRecord): string | null {
  const { choices, answer } = value;
  if (typeof value.prompt !== 'string') return `${file}:${line}: a multiple-choice record needs a string "prompt"`;
  if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string')) {
    return `${file}:${line}: "choices" must be a list of at least two strings`;
  }
  if (!Number.isInteger(answer) || (answer as number) < 0 || (answer as number) >= choices.length) {
    return `${file}:${line}: "answer" must be an index into choices (0..${choices.length - 1}), got ${preview(answer)}`;
  }
  return null;
}

/** The multiple-choice records of a file (prompt, choices, answer index), for accuracy; null if it has none. */
export function choiceExamples(file: string, records: DataRecord[]): ChoiceExample[] | null {
  if (!records.every((r) => isChoiceRecord(r.value))) return null;
  const problems = records.map((r) => choiceProblem(file, r)).filter((p): p is string => p !== null);
  if (problems.length) throw new DatasetError(file, problems);
  return records.map(({ value }) => ({ prompt: value.prompt as string, choices: value.choices as string[], answer: value.answer as number }));
}

/** A seeded Fisher–Yates permutation of 0..n-1: the same seed gives the same order. */
export function shuffledIndices(n: number, seed: string): number[] {
  const random = seedrandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** Splits off a held-out share, deterministically for a seed. */
export function splitExamples<T>(examples: T[], share: number, seed: number): { train: T[]; eval: T[] } {
  if (share <= 0) return { train: examples, eval: [] };
  const order = shuffledIndices(examples.length, `split:${seed}`);
  const held = Math.max(1, Math.round(examples.length * share));
  return { eval: order.slice(0, held).map((i) => examples[i]!), train: order.slice(held).map((i) => examples[i]!) };
}

/** Concatenates examples into rows of exactly `maxLength` tokens (the last row may be shorter). */
export function pack(examples: TokenizedExample[], maxLength: number): TokenizedExample[] {
  const ids = examples.flatMap((e) => e.inputIds);
  const labels = examples.flatMap((e) => e.labels);
  const rows: TokenizedExample[] = [];
  for (let start = 0; start < ids.length; start += maxLength) {
    rows.push({ inputIds: ids.slice(start, start + maxLength), labels: labels.slice(start, start + maxLength) });
  }
  return rows;
}

/** Pads to the longest row with the pad id (labels -100). */
export function collate(rows: TokenizedExample[], padTokenId: number): Batch {
  const width = Math.max(...rows.map((r) => r.inputIds.length));
  const padded = (values: number[], fill: number) => [...values, ...Array<number>(width - values.length).fill(fill)];
  return {
    inputIds: rows.map((r) => padded(r.inputIds, padTokenId)),
    labels: rows.map((r) => padded(r.labels, IGNORE_INDEX)),
    targetTokens: rows.reduce((n, r) => n + r.labels.slice(1).filter((l) => l !== IGNORE_INDEX).length, 0),
  };
}

/** The batches of one epoch, in the seeded order of that epoch. */
export function epochBatches(rows: TokenizedExample[], batchSize: number, seed: number, epoch: number, padTokenId: number): Batch[] {
  const order = shuffledIndices(rows.length, `epoch:${seed}:${epoch}`);
  const batches: Batch[] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    batches.push(collate(order.slice(start, start + batchSize).map((i) => rows[i]!), padTokenId));
  }
  return batches;
}
