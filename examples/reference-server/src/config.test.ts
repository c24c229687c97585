import { describe, expect, it } from 'vitest';
import { ConfigError, isLoopbackHost, loadConfig, sandboxTokenAccess, UPSTREAM_VARIABLES } from './config.js';

const UPSTREAMS: Record<(typeof UPSTREAM_VARIABLES)[number], string> = {
  OPENEMR_URL: 'https://emr.hospital.test',
  FHIR_URL: 'https://fhir.hospital.test/fhir',
  ORTHANC_URL: 'https://pacs.hospital.test',
  AMQP_URL: 'amqps://mq.hospital.test',
  MYSQL_URL: 'mysql://cdss@db.hospital.test/cdss',
};

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.join('\n');
  }
  return '';
}

describe('sandbox mode and real upstreams', () => {
  it.each(UPSTREAM_VARIABLES)('refuses %s in sandbox mode, naming it', (name) => {
    const message = problems({ [name]: UPSTREAMS[name] });
    expect(message).toContain(`${name}: sandbox mode runs on embedded systems`);
    expect(message).not.toContain(UPSTREAMS[name]);
  });

  it('accepts real upstreams in sandbox mode only with CDSS_SANDBOX_ALLOW_UPSTREAMS=true', () => {
    const config = loadConfig({ ...UPSTREAMS, CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true' });
    expect(config.CDSS_MODE).toBe('sandbox');
    expect(config.MYSQL_URL).toBe(UPSTREAMS.MYSQL_URL);
    expect(problems({ ...UPSTREAMS, CDSS_SANDBOX_ALLOW_UPSTREAMS: 'false' })).toContain('OPENEMR_URL');
  });
});

const auth = {
  CDSS_MODE: 'connected',
  CDSS_AUTH_JWKS_URL: 'https://idp.hospital.test/jwks',
  CDSS_WEBHOOK_SECRET: 'w'.repeat(40),
  OPENEMR_CLIENT_ID: 'cdss',
};

describe('connected mode', () => {
  it('needs every upstream and the authentication settings', () => {
    const message = problems({ CDSS_MODE: 'connected' });
    for (const name of [...UPSTREAM_VARIABLES, 'CDSS_AUTH_JWKS_URL', 'CDSS_WEBHOOK_SECRET'])
      expect(message).toContain(name);
    expect(loadConfig({ ...auth, ...UPSTREAMS }).CDSS_MODE).toBe('connected');
    expect(problems({ ...auth, ...UPSTREAMS, FHIR_URL: '' })).toMatch(/^FHIR_URL: connected mode needs it$/);
  });

  it('takes an algorithm allow-list and a longest token lifetime', () => {
    const config = loadConfig({
      ...auth,
      ...UPSTREAMS,
      CDSS_AUTH_ALGORITHMS: 'RS256, PS256',
      CDSS_AUTH_MAX_TOKEN_LIFETIME_S: '3600',
    });
    expect(config.CDSS_AUTH_ALGORITHMS).toEqual(['RS256', 'PS256']);
    expect(config.CDSS_AUTH_MAX_TOKEN_LIFETIME_S).toBe(3600);
    expect(problems({ ...auth, ...UPSTREAMS, CDSS_AUTH_ALGORITHMS: 'HS256' })).toContain('CDSS_AUTH_ALGORITHMS');
    expect(problems({ ...auth, ...UPSTREAMS, CDSS_AUTH_ALGORITHMS: 'none' })).toContain('CDSS_AUTH_ALGORITHMS');
  });

  it('takes SMART Backend Services clients only with the server’s signing keys', () => {
    const connected = { ...auth, ...UPSTREAMS };
    for (const name of ['FHIR_BACKEND_CLIENT_ID', 'OPENEMR_BACKEND_CLIENT_ID'])
      expect(problems({ ...connected, [name]: 'cdss' })).toBe(
        `CDSS_SERVER_JWKS_FILE: ${name} needs the server's signing keys (a private JWKS with an RS384 or ES384 key)`,
      );
    const config = loadConfig({
      ...connected,
      CDSS_SERVER_JWKS_FILE: '/etc/cdss/jwks.json',
      FHIR_BACKEND_CLIENT_ID: 'cdss',
      FHIR_BACKEND_TOKEN_URL: 'https://auth.hospital.test/token',
    });
    expect(config.FHIR_BACKEND_SCOPE).toContain('system/DiagnosticReport.crus');
    expect(problems({ ...connected, FHIR_BACKEND_TOKEN_URL: 'https://auth.hospital.test/token' })).toBe(
      'FHIR_BACKEND_CLIENT_ID: required with FHIR_BACKEND_TOKEN_URL',
    );
    expect(problems({ FHIR_BACKEND_CLIENT_ID: 'cdss', FHIR_BACKEND_SCOPE: 'user/*.rs' })).toContain(
      'FHIR_BACKEND_SCOPE',
    );
  });
});

describe('the sandbox token route', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.5', false],
    ['192.168.1.20', false],
    ['cdss.hospital.test', false],
  ])('treats HOST %s as loopback: %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });

  it('is served on loopback, off elsewhere, and exposed only when asked; never in connected mode', () => {
    expect(sandboxTokenAccess(loadConfig({}))).toBe('loopback');
    expect(sandboxTokenAccess(loadConfig({ HOST: '0.0.0.0' }))).toBe('off');
    expect(sandboxTokenAccess(loadConfig({ HOST: '0.0.0.0', CDSS_SANDBOX_EXPOSE: 'true' }))).toBe('exposed');
    const connected = loadConfig({ ...auth, ...UPSTREAMS, HOST: '127.0.0.1', CDSS_SANDBOX_EXPOSE: 'true' });
    expect(sandboxTokenAccess(connected)).toBe('off');
  });
});
