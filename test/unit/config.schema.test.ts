// The config's JSON Schema (server/config/schema.ts): the committed schemas/moslora.schema.json
// must be the one the zod schema generates, or editors validate against a stale copy.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { configJsonSchema, configSchema } from '../../server/config/schema';

describe('adapter config: the JSON Schema', () => {
  it('the committed JSON Schema is the one the zod schema generates (run `npm run schema` after changing it)', async () => {
    const committed = JSON.parse(await readFile('schemas/moslora.schema.json', 'utf8'));
    assert.deepEqual(committed, configJsonSchema());
  });
});

describe('adapter config: the frozen base precision keys', () => {
  const issues = (extra: object) => {
    const result = configSchema.safeParse({ model: '.', data: { train: '.' }, ...extra });
    return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('takes a power-of-two quant_group_size from 16 to 1024 with load_in_8bit or load_in_4bit, one issue per wrong key', () => {
    assert.deepEqual(issues({ load_in_4bit: true, quant_group_size: 64 }), []);
    assert.deepEqual(issues({ load_in_4bit: true, quant_group_size: 48 }), ['quant_group_size: must be a power of two from 16 to 1024 (e.g. 64), got 48']);
    assert.equal(issues({ load_in_8bit: true, quant_group_size: 2048 }).length, 1);
    assert.deepEqual(issues({ quant_group_size: 64 }), ['quant_group_size: quant_group_size applies with load_in_8bit or load_in_4bit only; set one, or remove this key']);
    assert.equal(issues({ load_in_8bit: true, load_in_4bit: true }).length, 1);
  });
});
