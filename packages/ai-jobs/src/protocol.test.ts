import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '@cdss/core';
import {
  checkWorkerId,
  createAccepted,
  createMessage,
  createRequested,
  createSucceeded,
  decodeMessage,
  encodeMessage,
  isoTime,
} from './codec.js';
import { protocolJsonSchemas } from './json-schema.js';
import { requestAnalysisInputSchema } from './client.js';
import {
  analysisAcceptedSchema,
  analysisRequestedSchema,
  analysisSucceededSchema,
  failureReasonSchema,
  jobMessageSchema,
} from './protocol.js';
import { sampleRequest, sampleRequestInput, sampleResult } from './testing.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const vectorSchema = z.strictObject({
  description: z.string(),
  valid: z.boolean(),
  reason: z.enum(['malformed', 'unsupported-version', 'schema-invalid']).optional(),
  message: z.unknown().optional(),
  raw: z.string().optional(),
});

function vectors(kind: 'valid' | 'invalid'): [string, z.infer<typeof vectorSchema>][] {
  const dir = join(pkg, 'test-vectors', 'v1', kind);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f, vectorSchema.parse(JSON.parse(readFileSync(join(dir, f), 'utf8')))]);
}

describe('shared test vectors', () => {
  const valid = vectors('valid');
  const invalid = vectors('invalid');

  it('cover every message type, valid and invalid', () => {
    const types = new Set(valid.map(([, v]) => (v.message as { type: string }).type));
    expect([...types].sort()).toEqual(jobMessageSchema.options.map((o) => o.shape.type.value).sort());
    expect(invalid.length).toBeGreaterThanOrEqual(10);
    expect(new Set(invalid.map(([, v]) => v.reason))).toEqual(
      new Set(['malformed', 'unsupported-version', 'schema-invalid']),
    );
  });

  it.each(valid)('%s decodes and re-encodes unchanged', (_file, vector) => {
    expect(vector.valid).toBe(true);
    const decoded = decodeMessage(JSON.stringify(vector.message));
    expect(decoded).toMatchObject({ ok: true });
    if (!decoded.ok) return;
    expect(decoded.message).toEqual(vector.message);
    expect(JSON.parse(encodeMessage(decoded.message).toString('utf8'))).toEqual(vector.message);
  });

  it.each(invalid)('%s is refused with its reason', (_file, vector) => {
    expect(vector.valid).toBe(false);
    const body = vector.raw ?? JSON.stringify(vector.message);
    const decoded = decodeMessage(Buffer.from(body));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.reason).toBe(vector.reason);
    expect(decoded.detail.length).toBeGreaterThan(0);
  });

  it('details name the failing path, never the value (no PHI in dead-letter headers)', () => {
    const [, vector] = invalid.find(([f]) => f === 'patient-name-not-reference.json')!;
    const decoded = decodeMessage(JSON.stringify(vector.message));
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.detail).toContain('patientRef');
    expect(decoded.detail).not.toContain('Jane');
  });
});

describe('JSON Schema files', () => {
  it('the committed files are what the generator writes (run `pnpm --filter @cdss/ai-jobs gen:schema`)', () => {
    const generated = protocolJsonSchemas();
    const dir = join(pkg, 'schema', 'v1');
    expect(readdirSync(dir).sort()).toEqual(
      Object.keys(generated)
        .map((f) => f.replace('v1/', ''))
        .sort(),
    );
    for (const [file, schema] of Object.entries(generated)) {
      const committed: unknown = JSON.parse(readFileSync(join(pkg, 'schema', file), 'utf8'));
      expect(committed, file).toEqual(schema);
    }
  });

  it('lists the fixed failure reasons as an enum', () => {
    const failed = protocolJsonSchemas()['v1/analysis.failed.schema.json'] as {
      properties: { reason: { enum: string[] } };
    };
    expect(failed.properties.reason.enum).toEqual(failureReasonSchema.options);
  });
});

describe('createMessage / encodeMessage', () => {
  it('fills in the envelope', () => {
    const msg = createMessage(
      {
        type: 'analysis.progress',
        jobId: '0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70',
        workerId: 'w',
        stage: 'fetch',
        percent: 5,
      },
      Date.UTC(2026, 10, 26),
    );
    expect(msg).toMatchObject({ protocol: 'cdss.ai-jobs', version: 1, sentAt: '2026-11-26T00:00:00.000Z' });
    expect(msg.messageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses an invalid message with a ValidationError naming the field', () => {
    let error: unknown;
    try {
      createMessage({
        type: 'analysis.progress',
        jobId: '0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70',
        workerId: 'w',
        stage: 'fetch',
        percent: 500,
      });
    } catch (e) {
      error = e;
    }
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).issues.map((i) => i.path)).toContain('percent');
  });
});

describe('createAccepted (the parse-free accepted event of a worker)', () => {
  it('builds a message the protocol accepts, from a validated request', () => {
    const request = sampleRequest();
    const now = Date.parse('2026-01-02T03:04:05.000Z');
    const accepted = createAccepted(request, checkWorkerId('worker-1'), 2, now);
    expect(analysisAcceptedSchema.parse(accepted)).toEqual(accepted);
    expect(accepted).toMatchObject({
      jobId: request.jobId,
      workerId: 'worker-1',
      attempt: 2,
      sentAt: '2026-01-02T03:04:05.000Z',
    });
    const decoded = decodeMessage(encodeMessage(accepted));
    expect(decoded.ok && decoded.message).toEqual(accepted);
  });

  it('validates when an input is not known to be valid', () => {
    const request = sampleRequest();
    expect(() => createAccepted(request, 'w', 0)).toThrow(ValidationError);
    expect(() => createAccepted({ ...request, jobId: 'not-a-uuid' }, 'w', 1)).toThrow(ValidationError);
  });

  it('refuses a worker id the protocol does not accept', () => {
    expect(() => checkWorkerId('')).toThrow(ValidationError);
    expect(() => checkWorkerId('x'.repeat(129))).toThrow(ValidationError);
    expect(checkWorkerId('w')).toBe('w');
  });
});

describe('decodeMessage input kinds', () => {
  it('decodes a Buffer, a Uint8Array view into a larger buffer, and a string alike', () => {
    const body = encodeMessage(sampleRequest());
    const padded = new Uint8Array(body.length + 8);
    padded.set(body, 4);
    for (const input of [body, padded.subarray(4, 4 + body.length), body.toString('utf8')]) {
      const decoded = decodeMessage(input);
      expect(decoded.ok).toBe(true);
    }
  });
});

describe('createSucceeded (only the result is parsed)', () => {
  it('builds a message the protocol accepts', () => {
    const request = sampleRequest();
    const succeeded = createSucceeded(request, 'w', sampleResult(), Date.parse('2026-01-02T03:04:05.000Z'));
    expect(analysisSucceededSchema.parse(succeeded)).toEqual(succeeded);
    const decoded = decodeMessage(encodeMessage(succeeded));
    expect(decoded.ok && decoded.message).toEqual(succeeded);
  });

  it('refuses an invalid result, naming its path', () => {
    const bad = { ...sampleResult(), unexpected: 1 };
    let error: unknown;
    try {
      createSucceeded(sampleRequest(), 'w', bad);
    } catch (e) {
      error = e;
    }
    expect(ValidationError.isInstance(error)).toBe(true);
    expect(() => createSucceeded({ ...sampleRequest() }, 'w', bad)).toThrow(ValidationError);
  });
});

describe('createSucceeded with an attempt', () => {
  it('carries a valid attempt and refuses one the protocol does not accept', () => {
    const succeeded = createSucceeded(sampleRequest(), 'w', sampleResult(), Date.now(), 3);
    expect(analysisSucceededSchema.parse(succeeded)).toMatchObject({ attempt: 3 });
    expect(() => createSucceeded(sampleRequest(), 'w', sampleResult(), Date.now(), 0)).toThrow(ValidationError);
    expect(() => createSucceeded(sampleRequest(), 'w', sampleResult(), Date.now(), 1.5)).toThrow(ValidationError);
  });
});

describe('createRequested (the parse-free request of JobClient)', () => {
  it('RequestAnalysis input checks every field with the message schema’s own field schema', () => {
    const input = requestAnalysisInputSchema.shape;
    const message = analysisRequestedSchema.shape;
    for (const key of Object.keys(input) as (keyof typeof input)[]) {
      if (key === 'jobId' || key === 'priority') continue; // optional / defaulted here, required in the message
      expect(input[key], key).toBe(message[key]);
    }
    expect(Object.keys(input).sort()).toEqual(
      Object.keys(message)
        .filter((k) => !['protocol', 'version', 'messageId', 'sentAt', 'type', 'createdAt'].includes(k))
        .sort(),
    );
  });

  it('builds a message the protocol accepts from parsed input', () => {
    const { jobId, ...rest } = sampleRequestInput({ deadline: '2026-12-01T00:00:00Z' });
    const input = requestAnalysisInputSchema.parse(rest);
    const message = createRequested({ ...input, jobId: jobId ?? randomUUID() }, Date.parse('2026-01-02T03:04:05Z'));
    expect(analysisRequestedSchema.parse(message)).toEqual(message);
    expect(message).toMatchObject({ sentAt: '2026-01-02T03:04:05.000Z', createdAt: '2026-01-02T03:04:05.000Z' });
    const decoded = decodeMessage(encodeMessage(message));
    expect(decoded.ok && decoded.message).toEqual(message);
  });
});

describe('isoTime', () => {
  it('formats like toISOString, for the same and for different milliseconds, and refuses an invalid time', () => {
    for (const ms of [0, 1_764_136_800_123, 1_764_136_800_123, 1_764_136_800_124, -1])
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
  });
});
