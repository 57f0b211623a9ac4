// What `moslora inspect` reports (server/models/inspect.ts), read from a tiny GPT-2's headers only:
// architecture, parameter count, stored dtypes and every linear module.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSafetensors } from '../../server/formats/safetensors';
import { formatInspection, inspectModel } from '../../server/models/inspect';
import { readModelLayout } from '../../server/models/modules';
import { TINY_GPT2_CONFIG, writeTinyModel } from '../helpers/tiny-models';

describe('inspect', () => {
  let dir: string;
  before(async () => {
    dir = await writeTinyModel(TINY_GPT2_CONFIG);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports architecture, parameters, dtypes and every linear module from the headers', async () => {
    const inspection = await inspectModel(dir);
    assert.equal(inspection.architecture, 'GPT2LMHeadModel');
    // wte + wpe + ln_f + 2 × (2 LayerNorms + c_attn + c_proj + c_fc + c_proj), lm_head tied
    const C = 32;
    const perLayer = 4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C);
    assert.equal(inspection.parameterCount, 48 * C + 32 * C + 2 * C + 2 * perLayer);
    assert.deepEqual(inspection.dtypes, [{ dtype: 'F32', tensors: 2 + 2 + 2 * 12, parameters: inspection.parameterCount }]);
    assert.equal(inspection.linearModules.length, 2 * 4 + 1);
    const text = formatInspection(inspection);
    assert.match(text, /^GPT2LMHeadModel {2}/);
    assert.match(text, /transformer\.h\.1\.mlp\.c_fc +\[128, 32\] {2}Conv1D \[in, out\], bias/);
    assert.match(text, /lm_head +\[48, 32\] {2}tied: transformer\.wte\.weight/);
  });

  it('reports the dtype the checkpoint stores (BF16 here), not the float32 it loads as', async () => {
    const header = (await readModelLayout(dir)).tensors;
    await writeSafetensors(
      join(dir, 'model.safetensors'),
      [...header].map(([name, { shape }]) => ({ name, dtype: 'BF16' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) })),
    );
    const inspection = await inspectModel(dir);
    assert.equal(inspection.dtypes[0]!.dtype, 'BF16');
    assert.equal(inspection.linearModules.length, 9);
  });
});
