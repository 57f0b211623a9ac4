// Where the cursor is in a config (server/lsp/context.ts), YAML by indentation and JSON by tokens:
// the key or value being typed, its range and the entries around it, in text that need not parse.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cursorContext, type CursorContext } from '../../server/lsp/context';

/** The context at the `|` in `text` (the bar is removed first). */
function at(text: string, language: 'yaml' | 'json' = 'yaml'): CursorContext | null {
  const offset = text.indexOf('|');
  assert.ok(offset >= 0, 'mark the cursor with |');
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  const character = offset - before.lastIndexOf('\n') - 1;
  return cursorContext(text.slice(0, offset) + text.slice(offset + 1), { line, character }, language);
}

describe('cursor context: YAML, read by indentation', () => {
  it('finds a top-level key being typed, with the keys already written', () => {
    const context = at('model: ./m\nr: 8\nal|\ndata:\n  train: t.jsonl\n');
    assert.deepEqual(context, {
      kind: 'key',
      path: [],
      siblings: ['r', 'model', 'data'],
      indent: 0,
      prefix: 'al',
      range: { start: { line: 2, character: 0 }, end: { line: 2, character: 2 } },
      quoted: false,
    });
  });

  it('finds a key of a section from its indentation, on an empty line', () => {
    const context = at('model: ./m\ndata:\n  train: t.jsonl\n  |\ntraining:\n  epochs: 1\n');
    assert.equal(context?.kind, 'key');
    assert.deepEqual(context.path, ['data']);
    assert.deepEqual(context.kind === 'key' && context.siblings, ['train']);
    assert.equal(context.prefix, '');
  });

  it('finds keys two levels deep and returns to the top level when the indentation does', () => {
    assert.deepEqual(at('data:\n  train: t\ntraining:\n  epochs: 1\n  sch|')?.path, ['training']);
    assert.deepEqual(at('data:\n  train: t\n\nba|')?.path, []);
  });

  it('finds a value, its prefix and the range that replacing it covers', () => {
    const context = at('model: ./m\ndata:\n  format: ch|at2  # comment\n');
    assert.deepEqual(context, {
      kind: 'value',
      path: ['data', 'format'],
      prefix: 'ch',
      range: { start: { line: 2, character: 10 }, end: { line: 2, character: 15 } },
      quoted: false,
    });
  });

  it('finds a quoted value and keeps the quotes out of the range', () => {
    const context = at('method: "mos|"\n');
    assert.equal(context?.kind, 'value');
    assert.equal(context.prefix, 'mos');
    assert.equal(context.quoted, true);
    assert.deepEqual(context.range, { start: { line: 0, character: 9 }, end: { line: 0, character: 12 } });
  });

  it('finds an entry of a block list, indented or not, with the other entries', () => {
    const indented = at('model: m\ntarget_modules:\n  - q_proj\n  - k_|\n  - v_proj\nr: 8\n');
    assert.equal(indented?.kind, 'item');
    assert.deepEqual(indented.path, ['target_modules']);
    assert.deepEqual(indented.kind === 'item' && indented.written.sort(), ['q_proj', 'v_proj']);
    assert.equal(indented.prefix, 'k_');
    assert.deepEqual(indented.range, { start: { line: 3, character: 4 }, end: { line: 3, character: 6 } });
    const flush = at('target_modules:\n- |\n');
    assert.equal(flush?.kind, 'item');
    assert.deepEqual(flush.path, ['target_modules']);
    assert.equal(flush.prefix, '');
  });

  it('finds an entry of a flow list, between other entries', () => {
    const context = at('r: 8\ntarget_modules: [q_proj, k_|, v_proj]\n');
    assert.equal(context?.kind, 'item');
    assert.deepEqual(context.path, ['target_modules']);
    assert.deepEqual(context.kind === 'item' && context.written, ['q_proj', 'v_proj']);
    assert.equal(context.prefix, 'k_');
    assert.deepEqual(context.range, { start: { line: 1, character: 25 }, end: { line: 1, character: 27 } });
    assert.equal(at('target_modules: [|')?.kind, 'item');
  });

  it('offers nothing inside a comment', () => {
    assert.equal(at('r: 8 # ra|'), null);
    assert.equal(at('# mo|'), null);
  });

  it('copes with text that is not valid YAML', () => {
    assert.equal(at('model: [\n  r: : :\n  |')?.kind, 'key');
    assert.deepEqual(at('r: 8\n    data:\n  |')?.path, []);
  });
});

describe('cursor context: JSON, tokenized up to the cursor', () => {
  it('finds a key being typed inside quotes, at its level', () => {
    const context = at('{"model": "m", "data": {"train": "t", "fo|"}}', 'json');
    assert.equal(context?.kind, 'key');
    assert.deepEqual(context.path, ['data']);
    assert.deepEqual(context.kind === 'key' && context.siblings, ['train']);
    assert.equal(context.prefix, 'fo');
    assert.equal(context.quoted, true);
  });

  it('finds a value, unquoted after a colon or inside quotes', () => {
    const bare = at('{\n  "method": |\n}', 'json');
    assert.equal(bare?.kind, 'value');
    assert.deepEqual(bare.path, ['method']);
    assert.equal(bare.quoted, false);
    const quoted = at('{"data": {"format": "ch|"}}', 'json');
    assert.deepEqual(quoted?.path, ['data', 'format']);
    assert.equal(quoted?.prefix, 'ch');
  });

  it('finds a list entry with the entries before it, in a document without its tail', () => {
    const context = at('{"target_modules": ["q_proj", "k|', 'json');
    assert.equal(context?.kind, 'item');
    assert.deepEqual(context.path, ['target_modules']);
    assert.deepEqual(context.kind === 'item' && context.written, ['q_proj']);
    assert.equal(context.prefix, 'k');
  });

  it('offers nothing in the middle of a number', () => {
    assert.equal(at('{"r": 1|6}', 'json'), null);
  });
});
