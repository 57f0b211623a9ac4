// Writes schemas/moslora.schema.json from the zod schema (server/config/schema.ts).
// `npm run schema`; test/unit/config.schema.test.ts fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../server/config/schema';

writeFileSync('schemas/moslora.schema.json', `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
console.log('wrote schemas/moslora.schema.json');
