/**
 * Writes the published JSON Schema of life-event definitions to docs/schemas/, from the object
 * the code validates with (a test fails when they differ):
 *
 *   npm run build && node dist/libs/workflow/scripts/write-schema.js && npx prettier --write docs/schemas
 */
import { writeFileSync } from 'node:fs';
import { definitionJsonSchema } from '../src/index.js';

const target = new URL('../../../../docs/schemas/life-event.schema.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(definitionJsonSchema, null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);
