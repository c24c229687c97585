/**
 * The spec validator itself: it must catch what is wrong, or the contract suite proves nothing.
 */
import { describe, expect, it } from 'vitest';
import { specFor } from './harness.js';
import type { Exchange } from './openapi-validator.js';
import { explain } from './spec-exceptions.js';

const ex = (over: Partial<Exchange>): Exchange => ({
  method: 'GET',
  url: '/apis/default/api/patient',
  requestHeaders: { authorization: 'Bearer t' },
  requestBody: undefined,
  status: 200,
  responseHeaders: {},
  responseBody: JSON.stringify({ validationErrors: [], internalErrors: [], data: [] }),
  ...over,
});

/** The profile a spec document is checked as (the 8 document is the 8.2.0-dev code). */
const profileOf = (spec: '8' | '7.0'): '8.2' | '7.0' => (spec === '8' ? '8.2' : '7.0');

describe.each(['8', '7.0'] as const)('OpenAPI validator (%s spec)', (version) => {
  const spec = specFor(version);

  it('accepts a conforming exchange', () => {
    expect(spec.check(ex({}))).toEqual([]);
  });

  it('catches a missing token, unknown and badly typed query parameters, and unknown operations', () => {
    expect(spec.check(ex({ requestHeaders: {} })).map((v) => v.kind)).toEqual(['missing-auth']);
    expect(spec.check(ex({ url: '/apis/default/api/patient?surname=x' }))[0]?.detail).toMatch(/surname/);
    expect(spec.check(ex({ url: '/apis/default/api/patient?_limit=500' }))[0]?.kind).toBe('query');
    expect(spec.check(ex({ url: '/apis/default/api/patients' }))[0]?.kind).toBe('unknown-operation');
  });

  it('catches request bodies that break the schema, and they are not excused', () => {
    const bad = ex({
      method: 'POST',
      requestBody: JSON.stringify({ fname: 'A', lname: 'B', DOB: '2000-01-01', sex: 7 }),
      status: 201,
    });
    const violations = spec.check(bad).filter((v) => v.side === 'request');
    expect(violations).toHaveLength(1);
    expect(violations[0]?.errors?.[0]?.instancePath).toBe('/sex');
    expect(explain(violations[0] as never, bad, profileOf(version))).toBeUndefined();
    const missing = ex({ method: 'POST', requestBody: JSON.stringify({ fname: 'A' }), status: 201 });
    expect(
      spec.check(missing).some((v) => v.side === 'request' && explain(v, missing, profileOf(version)) === undefined),
    ).toBe(true);
  });

  it('catches undeclared statuses and response bodies that break the schema', () => {
    const teapot = ex({ status: 418 });
    expect(spec.check(teapot)[0]?.kind).toBe('undeclared-status');
    expect(explain(spec.check(teapot)[0] as never, teapot, profileOf(version))).toBeUndefined();
    const wrong = ex({ responseBody: JSON.stringify({ validationErrors: [], internalErrors: 'boom', data: [] }) });
    const v = spec.check(wrong);
    expect(v[0]?.kind).toBe('response-body');
    expect(explain(v[0] as never, wrong, profileOf(version))).toBeUndefined();
  });
});
