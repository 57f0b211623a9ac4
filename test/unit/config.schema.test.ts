// The config's JSON Schema (server/config/schema.ts): the committed schemas/moslora.schema.json
// must be the one the zod schema generates, or editors validate against a stale copy.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { configJsonSchema } from '../../server/config/schema';

describe('adapter config: the JSON Schema', () => {
  it('the committed JSON Schema is the one the zod schema generates (run `npm run schema` after changing it)', async () => {
    const committed = JSON.parse(await readFile('schemas/moslora.schema.json', 'utf8'));
    assert.deepEqual(committed, configJsonSchema());
  });
});
