// Writes the protocol's JSON Schema files into packages/ai-jobs/schema/ (run: pnpm --filter @cdss/ai-jobs gen:schema).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolJsonSchemas } from '../src/json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');
for (const [file, schema] of Object.entries(protocolJsonSchemas())) {
  const path = join(root, file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote schema/${file}\n`);
}
