// Writes the protocol's JSON Schema files into packages/ai-jobs/schema/ (run: pnpm --filter @cdss/ai-jobs gen:schema).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';
import { protocolJsonSchemas } from '../src/json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'schema');
for (const [file, schema] of Object.entries(protocolJsonSchemas())) {
  const path = join(root, file);
  mkdirSync(dirname(path), { recursive: true });
  // formatted like the rest of the repository (`prettier --check .`); the test compares parsed JSON
  writeFileSync(path, await format(JSON.stringify(schema), { parser: 'json' }));
  process.stdout.write(`wrote schema/${file}\n`);
}
