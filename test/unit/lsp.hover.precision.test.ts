// The hover on the keys that choose the frozen base's precision (torch_dtype, load_in_8bit,
// load_in_4bit, bnb_4bit_quant_type, quant_group_size): the base's memory at this config's
// precision and at each setting, priced from the shipped tiny model's headers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FactCache } from '../../server/lsp/facts';
import { hoverConfig } from '../../server/lsp/hover';

const ROOT = resolve(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'examples', 'tiny-model');

// The tiny model, counted by hand from its config.json: 4 layers of q 128×128, k and v 64×128
// (2 key/value heads of 32), o 128×128, gate and up 256×128, down 128×256; a tied 1024×128
// embedding.
const LINEAR = 4 * (128 * 128 + 2 * 64 * 128 + 128 * 128 + 3 * 256 * 128);
const EMBEDDING = 1024 * 128;
const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
/** Bytes with the linear layers at `bits` per weight and a float32 scale per `group`, the embedding at float32. */
const grouped = (bits: number, group: number) => (LINEAR * bits) / 8 + (LINEAR / group) * 4 + EMBEDDING * 4;

describe('hover on the precision keys', () => {
  let facts: FactCache;
  let dir: string;
  before(() => {
    facts = new FactCache(() => {});
    dir = mkdtempSync(join(tmpdir(), 'moslora-hover-precision-'));
  });
  after(() => {
    facts.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  async function hover(lines: string[], key: string): Promise<string> {
    const text = [`model: ${MODEL}`, ...lines, 'data:', '  train: t.jsonl', ''].join('\n');
    const line = text.split('\n').findIndex((l) => l.startsWith(`${key}:`));
    assert.ok(line >= 0, `no ${key} line`);
    const result = await hoverConfig(`file://${join(dir, 'a.moslora.yaml')}`, text, { line, character: 1 }, facts);
    return (result?.contents as { value: string }).value;
  }

  it('load_in_4bit: this config at nf4 in groups of 64, marked in the table of every setting', async () => {
    const value = await hover(['load_in_4bit: true'], 'load_in_4bit');
    assert.ok(value.includes(`takes **${mib(grouped(4, 64))}** at this config's precision: nf4 (groups of 64), embedding and lm_head float32.`), value);
    assert.ok(value.includes(`| torch_dtype: float32 | ${mib((LINEAR + EMBEDDING) * 4)} |`), value);
    assert.ok(value.includes(`| torch_dtype: bfloat16 (or float16) | ${mib((LINEAR + EMBEDDING) * 2)} |`), value);
    assert.ok(value.includes(`| load_in_8bit | ${mib(grouped(8, 64))} |`), value);
    assert.ok(value.includes(`| load_in_4bit (nf4 or int4) (this config) | ${mib(grouped(4, 64))} |`), value);
    assert.equal(value.match(/\(this config\)/g)?.length, 1);
  });

  it('quant_group_size changes this config’s figure and leaves the table at the default groups', async () => {
    const value = await hover(['load_in_8bit: true', 'quant_group_size: 16'], 'quant_group_size');
    assert.ok(value.includes(`takes **${mib(grouped(8, 16))}** at this config's precision: int8 (groups of 16), embedding and lm_head float32.`), value);
    assert.ok(!value.includes('(this config)'), 'no default-group row is this config');
    assert.match(value, /a float32 scale per group of 16 weights/);
  });

  it('torch_dtype bfloat16 halves every weight; a value the schema refuses is priced at the default', async () => {
    const half = await hover(['torch_dtype: bfloat16'], 'torch_dtype');
    assert.ok(half.includes(`takes **${mib((LINEAR + EMBEDDING) * 2)}** at this config's precision: bfloat16.`), half);
    const refused = await hover(['torch_dtype: float8', 'load_in_8bit: true', 'quant_group_size: 48'], 'torch_dtype');
    assert.ok(refused.includes(`takes **${mib(grouped(8, 64))}** at this config's precision: int8 (groups of 64), embedding and lm_head float32.`), refused);
  });

  it('the hover on r keeps to the parameters', async () => {
    const value = await hover(['r: 8', 'load_in_4bit: true'], 'r');
    assert.match(value, /Trainable parameters at r = 8/);
    assert.ok(!value.includes('frozen base of'), value);
  });
});
