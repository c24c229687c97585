/**
 * The protocol as JSON Schema (draft 2020-12), generated from the zod schemas, for workers in other languages.
 * @packageDocumentation
 */
import { z } from 'zod';
import { MESSAGE_SCHEMAS, PROTOCOL_VERSION, jobMessageSchema } from './protocol.js';

/** Base of the schemas' `$id`s. */
export const SCHEMA_ID_BASE = 'https://cdss.example.org/schema/ai-jobs';

function toSchema(schema: z.ZodType, id: string, title: string): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'throw' }) as Record<string, unknown>;
  return {
    $schema: json['$schema'],
    $id: id,
    title,
    ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== '$schema')),
  };
}

/**
 * The JSON Schema documents of the protocol, keyed by file name relative to the package's `schema/` folder:
 * one per message type (`v1/analysis.requested.schema.json`, …) and `v1/message.schema.json` for any message.
 * The committed files are these, written by `scripts/generate-json-schema.ts`; a test keeps them in step.
 * @returns file name → schema document
 */
export function protocolJsonSchemas(): Record<string, Record<string, unknown>> {
  const v = `v${PROTOCOL_VERSION}`;
  const files: Record<string, Record<string, unknown>> = {
    [`${v}/message.schema.json`]: toSchema(
      jobMessageSchema,
      `${SCHEMA_ID_BASE}/${v}/message.schema.json`,
      'Any cdss.ai-jobs message',
    ),
  };
  for (const [type, schema] of Object.entries(MESSAGE_SCHEMAS)) {
    const file = `${v}/${type}.schema.json`;
    files[file] = toSchema(schema, `${SCHEMA_ID_BASE}/${file}`, `cdss.ai-jobs ${type}`);
  }
  return files;
}
