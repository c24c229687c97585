/**
 * The CDS Hooks schemas against every JSON example of the 2.0 specification and of the hook definitions
 * (`__fixtures__/`), plus the rules the tables state that the examples do not exercise.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  actionSchema,
  cardSchema,
  clientJwtClaimsSchema,
  clientJwtHeaderSchema,
  discoveryResponseSchema,
  feedbackRequestSchema,
  fhirAuthorizationSchema,
  hookRequestSchema,
  hookResponseSchema,
  linkSchema,
  orderSelectContextSchema,
  orderSignContextSchema,
  patientViewContextSchema,
  sourceSchema,
} from './schemas.js';

interface SpecExample {
  section: string;
  example: Record<string, unknown>;
}
const spec = JSON.parse(readFileSync(new URL('./__fixtures__/spec-2.0-examples.json', import.meta.url), 'utf8')) as {
  examples: SpecExample[];
};
const hooks = JSON.parse(
  readFileSync(new URL('./__fixtures__/hook-context-examples.json', import.meta.url), 'utf8'),
) as { examples: Record<'patient-view' | 'order-select' | 'order-sign', Array<Record<string, unknown>>> };

const examples = (section: string): Array<Record<string, unknown>> =>
  spec.examples.filter((e) => e.section === section).map((e) => e.example);
const only = (section: string): Record<string, unknown> => {
  const [first] = examples(section);
  if (!first) throw new Error(`no example under ${section}`);
  return first;
};
const ok = (schema: z.ZodType, value: unknown): void => {
  const result = schema.safeParse(value);
  expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
};
const issuesOf = (schema: z.ZodType, value: unknown): string[] =>
  schema.safeParse(value).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

describe('CDS Hooks 2.0 schemas on the specification examples', () => {
  it('holds all 27 examples of the specification page', () => {
    expect(spec.examples).toHaveLength(27);
  });

  it('accepts the discovery examples (with and without extension)', () => {
    ok(discoveryResponseSchema, only('Discovery Example'));
    ok(discoveryResponseSchema, examples('Extensions')[1]);
  });

  it('accepts the hook request examples', () => {
    ok(hookRequestSchema, only('Example'));
    ok(hookRequestSchema, examples('Extensions')[0]);
    ok(fhirAuthorizationSchema, only('Passing the Access Token to the CDS Service')['fhirAuthorization']);
  });

  it('accepts the prefetch data example as a request’s prefetch', () => {
    const { prefetch } = only('Example prefetch data');
    ok(hookRequestSchema, { hook: 'patient-view', hookInstance: 'x', context: {}, prefetch });
  });

  it('accepts the response examples, the source, the actions and the override reasons', () => {
    ok(hookResponseSchema, only('HTTP Response'));
    const full = examples('Example').find((e) => Array.isArray(e['cards']));
    ok(hookResponseSchema, full);
    ok(sourceSchema, only('Source')['source']);
    for (const action of examples('Action')) ok(actionSchema, action);
    const reasons = only('Reasons for rejecting a card')['overrideReasons'];
    ok(cardSchema, { summary: 's', indicator: 'info', source: { label: 'l' }, overrideReasons: reasons });
  });

  it('rejects the System Action example, whose action lacks the description the Action table requires', () => {
    expect(issuesOf(hookResponseSchema, only('System Action'))).toEqual([
      'systemActions.0.description: Invalid input: expected string, received undefined',
    ]);
  });

  it('accepts the three feedback examples', () => {
    for (const section of [
      'Example suggestion accepted',
      'Example overridden guidance without overrideReason',
      'Example overridden guidance with overrideReason',
    ])
      ok(feedbackRequestSchema, only(section));
  });

  it('accepts the JWT header and payload examples', () => {
    const jwt = examples('Example').filter((e) => 'alg' in e || 'jti' in e);
    ok(clientJwtHeaderSchema, jwt[0]);
    ok(clientJwtClaimsSchema, jwt[1]);
  });

  it('accepts each hook definition’s context examples', () => {
    for (const context of hooks.examples['patient-view']) ok(patientViewContextSchema, context);
    for (const context of hooks.examples['order-select']) ok(orderSelectContextSchema, context);
    for (const context of hooks.examples['order-sign']) ok(orderSignContextSchema, context);
  });

  it('rejects the extension example as a patient-view context: it omits the required patientId', () => {
    const request = examples('Extensions')[0] as { context: unknown };
    expect(issuesOf(patientViewContextSchema, request.context)).toEqual([
      'patientId: Invalid input: expected string, received undefined',
    ]);
  });
});

describe('CDS Hooks 2.0 rules beyond the examples', () => {
  const card = { summary: 'A card', indicator: 'info', source: { label: 'CDSS' } };

  it('requires fhirServer with fhirAuthorization', () => {
    const authorization = only('Passing the Access Token to the CDS Service')['fhirAuthorization'];
    expect(
      issuesOf(hookRequestSchema, {
        hook: 'patient-view',
        hookInstance: 'x',
        context: {},
        fhirAuthorization: authorization,
      }),
    ).toEqual(['fhirServer: fhirServer is required when fhirAuthorization is present']);
  });

  it('limits the summary to under 140 characters and requires selectionBehavior with suggestions', () => {
    expect(issuesOf(cardSchema, { ...card, summary: 'x'.repeat(140) })).toEqual([
      'summary: summary must be under 140 characters',
    ]);
    expect(issuesOf(cardSchema, { ...card, suggestions: [{ label: 'Do it' }] })).toEqual([
      'selectionBehavior: selectionBehavior is required when suggestions are present',
    ]);
  });

  it('rejects empty strings and empty arrays, unknown indicators, and fields the card does not define', () => {
    expect(issuesOf(cardSchema, { ...card, detail: '' })).toHaveLength(1);
    expect(issuesOf(cardSchema, { ...card, links: [] })).toHaveLength(1);
    expect(issuesOf(cardSchema, { ...card, indicator: 'hard-stop' })).toHaveLength(1);
    expect(issuesOf(cardSchema, { ...card, colour: 'red' })).toEqual([': Unrecognized key: "colour"']);
  });

  it('allows appContext only on smart links, and a create action only with its resource', () => {
    expect(issuesOf(linkSchema, { label: 'l', url: 'https://a.example', type: 'absolute', appContext: 'x' })).toEqual([
      'appContext: appContext is only valid on smart links',
    ]);
    expect(issuesOf(actionSchema, { type: 'create', description: 'd' })).toEqual([
      'resource: a create action needs resource',
    ]);
  });

  it('requires display on override reasons a service gives, and acceptedSuggestions for accepted feedback', () => {
    expect(
      issuesOf(cardSchema, { ...card, overrideReasons: [{ system: 'urn:x', code: 'c' }] }).map((i) => i.split(':')[0]),
    ).toEqual(['overrideReasons.0.display']);
    expect(
      issuesOf(feedbackRequestSchema, {
        feedback: [{ card: 'c', outcome: 'accepted', outcomeTimestamp: '2021-12-11T10:05:31Z' }],
      }),
    ).toEqual(['feedback.0.acceptedSuggestions: acceptedSuggestions is required for an accepted outcome']);
  });

  it('refuses none and HMAC JWT algorithms', () => {
    expect(issuesOf(clientJwtHeaderSchema, { alg: 'none', kid: 'k', typ: 'JWT' })).toHaveLength(1);
    expect(issuesOf(clientJwtHeaderSchema, { alg: 'HS256', kid: 'k', typ: 'JWT' })).toHaveLength(1);
  });
});
