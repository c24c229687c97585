/**
 * The server's configuration: one zod schema read from the environment.
 *
 * Sandbox mode (the default for `npm start`) needs nothing: every port uses its embedded adapter, and a real upstream
 * URL is refused unless `CDSS_SANDBOX_ALLOW_UPSTREAMS=true`, so a sandbox never writes demo data into a hospital's
 * systems by accident. Connected mode needs every upstream (`OPENEMR_URL`, `FHIR_URL`, `ORTHANC_URL`, `AMQP_URL`,
 * `MYSQL_URL`) and its authentication settings. A wrong or missing value stops the start with a message naming the
 * variable.
 */
import { BlockList, isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { trustedClientSchema } from './cds-hooks/caller-auth.js';
import { roleSchema } from './auth/rbac.js';

const csv = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);

const booleanish = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');

const httpUrl = z.url({ protocol: /^https?$/ });

/**
 * What the server does on the FHIR server (SMART v2 scopes): conditional creates and updates, reads and searches of
 * the resources it writes (patients, analysis reports with their observations, and audit events); never a delete.
 */
export const FHIR_BACKEND_DEFAULT_SCOPE = [
  'Patient',
  'ImagingStudy',
  'DiagnosticReport',
  'Observation',
  'Device',
  'BodyStructure',
  'Endpoint',
  'Provenance',
  'AuditEvent',
]
  .map((type) => `system/${type}.crus`)
  .join(' ');

/** The variables that point a port at a real system. */
export const UPSTREAM_VARIABLES = ['OPENEMR_URL', 'FHIR_URL', 'ORTHANC_URL', 'AMQP_URL', 'MYSQL_URL'] as const;

/** A JSON value checked by a schema. */
const jsonOf = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((value, ctx) => {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** Raw environment variables understood by the server. */
export const envSchema = z
  .object({
    CDSS_MODE: z.enum(['sandbox', 'connected']).default('sandbox'),
    // Sandbox only: serve the demo-token route on a non-loopback HOST, and accept real upstream URLs.
    CDSS_SANDBOX_EXPOSE: booleanish.default(false),
    CDSS_SANDBOX_ALLOW_UPSTREAMS: booleanish.default(false),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    CDSS_DATA_DIR: z.string().min(1).default('.data/sandbox'),
    CDSS_BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'a size such as 1mb or 512kb')
      .default('1mb'),
    CDSS_CORS_ORIGINS: csv.default([]),
    CDSS_METRICS_PUBLIC: booleanish.default(true),
    CDSS_TRUST_PROXY: z.string().default('loopback'),
    CDSS_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(600),
    // WebSocket connections that have not authenticated yet, per client address and in total.
    CDSS_WS_MAX_UNAUTHENTICATED_PER_IP: z.coerce.number().int().positive().default(16),
    CDSS_WS_MAX_UNAUTHENTICATED: z.coerce.number().int().positive().default(512),
    CDSS_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    CDSS_SHUTDOWN_GRACE_MS: z.coerce.number().int().positive().default(10_000),
    // Server processes sharing the port (node:cluster): `auto` is one per core. More than one needs connected mode,
    // where all state is in the stores.
    CDSS_PROCESSES: z
      .union([z.literal('auto'), z.coerce.number().int().min(1).max(64)])
      .default(1)
      .transform((value) => (value === 'auto' ? availableParallelism() : value)),
    // Authentication: a JWKS URL or a PEM public key in connected mode; sandbox signs its own demo tokens.
    CDSS_AUTH_JWKS_URL: httpUrl.optional(),
    CDSS_AUTH_PUBLIC_KEY: z.string().startsWith('-----BEGIN PUBLIC KEY-----').optional(),
    CDSS_AUTH_ISSUER: z.string().min(1).default('urn:cdss:sandbox'),
    CDSS_AUTH_AUDIENCE: z.string().min(1).default('cdss'),
    CDSS_AUTH_ROLE_CLAIM: z.string().min(1).default('roles'),
    // Signature algorithms accepted, narrowing the key type's list (RS256,PS256,ES256,...); all of the type's by default.
    CDSS_AUTH_ALGORITHMS: csv.pipe(z.array(z.string().regex(/^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/))).optional(),
    // The longest remaining lifetime (exp - now) an access token may have.
    CDSS_AUTH_MAX_TOKEN_LIFETIME_S: z.coerce.number().int().positive().default(86_400),
    CDSS_WEBHOOK_SECRET: z.string().min(32, 'at least 32 characters').optional(),
    CDSS_MODEL_PATH: z.string().min(1).optional(),
    CDSS_WORKER: z.enum(['in-process', 'off']).default('in-process'),
    // Prefix of the job protocol's RabbitMQ exchanges and queues (@cdss/ai-jobs topology): one broker can carry the
    // jobs of several independent deployments (or test runs) that must not take each other's work.
    CDSS_JOBS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/, '1-100 of A-Z a-z 0-9 . _ -')
      .default('cdss.ai'),
    CDSS_DASHBOARD_DIR: z.string().min(1).optional(),
    CDSS_SANDBOX_STUDIES: z.coerce.number().int().min(0).max(10).default(3),
    // Jobs whose worker stopped reporting (no heartbeat for CDSS_JOB_STALE_MS) are re-published, at most
    // CDSS_JOB_MAX_REAPS times, then failed as `worker-lost`; every instance checks every CDSS_JOB_REAP_INTERVAL_MS.
    CDSS_JOB_REAP_INTERVAL_MS: z.coerce.number().int().positive().default(30_000),
    CDSS_JOB_STALE_MS: z.coerce.number().int().positive().default(120_000),
    CDSS_JOB_MAX_REAPS: z.coerce.number().int().min(0).max(10).default(2),
    CDSS_CACHE_TTL_MS: z.coerce
      .number()
      .int()
      .positive()
      .default(5 * 60_000),
    // Inside the EHR: the public URL (CDS Hooks `aud`, links), and the CDS Clients trusted to call the CDS service.
    CDSS_PUBLIC_URL: httpUrl.optional(),
    CDSS_CDS_CLIENTS: jsonOf(z.array(trustedClientSchema)).default([]),
    // Analyses that start themselves from the PACS change feed (on unless turned off).
    CDSS_AUTO_ANALYSIS: booleanish.default(true),
    // SMART: the server's signing keys (private JWKS; sandbox makes one), and the dashboard as a SMART app.
    CDSS_SERVER_JWKS_FILE: z.string().min(1).optional(),
    CDSS_SMART_CLIENT_ID: z.string().min(1).optional(),
    CDSS_SMART_ISSUER: httpUrl.optional(),
    CDSS_SMART_FHIR_URL: httpUrl.optional(),
    CDSS_SMART_EHR_SCOPE: z.string().min(1).default('openid fhirUser launch patient/Patient.rs'),
    CDSS_SMART_STANDALONE_SCOPE: z.string().min(1).default('openid fhirUser launch/patient patient/Patient.rs'),
    CDSS_SMART_DEFAULT_ROLE: roleSchema.default('physician'),
    CDSS_SMART_USER_ROLES: jsonOf(z.record(z.string(), roleSchema)).default({}),
    // SMART Backend Services: the server's own client for OpenEMR's FHIR API (registered with the server's JWKS URL).
    OPENEMR_BACKEND_CLIENT_ID: z.string().min(1).optional(),
    OPENEMR_BACKEND_SCOPE: z.string().min(1).default('system/Patient.rs system/Condition.rs'),
    // SMART Backend Services towards the FHIR server (FHIR_URL, or the embedded one): the server's client there, the
    // token endpoint (read from the FHIR server's .well-known/smart-configuration when unset) and the scopes.
    FHIR_BACKEND_CLIENT_ID: z.string().min(1).optional(),
    FHIR_BACKEND_TOKEN_URL: httpUrl.optional(),
    FHIR_BACKEND_SCOPE: z
      .string()
      .trim()
      .regex(/^(system\/\S+)(\s+system\/\S+)*$/, 'space-separated system/ scopes')
      .default(FHIR_BACKEND_DEFAULT_SCOPE),
    // Approved reports go into OpenEMR as PDF patient documents in this category (OpenEMR lists none: configure it).
    OPENEMR_DOCUMENT_CATEGORY: z
      .string()
      .regex(/^[A-Za-z0-9_/]{1,100}$/, 'a category path such as Medical_Record (underscores for spaces)')
      .default('Medical_Record'),
    // Ports, each switched to its real adapter by its own variables.
    OPENEMR_URL: httpUrl.optional(),
    OPENEMR_SITE: z.string().min(1).default('default'),
    OPENEMR_VERSION: z.enum(['auto', '7.0', '8', '8.0', '8.2']).default('8.0'),
    OPENEMR_CLIENT_ID: z.string().min(1).optional(),
    OPENEMR_CLIENT_SECRET: z.string().min(1).optional(),
    OPENEMR_USERNAME: z.string().min(1).optional(),
    OPENEMR_PASSWORD: z.string().min(1).optional(),
    /** Per-request timeout towards OpenEMR; a write that times out is read back before it is sent again. */
    OPENEMR_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
    // How long an instance holds an Idempotency-Key while it writes; if it dies holding one, a retry on another
    // instance waits this long (409), then reads OpenEMR back. Keep it above OPENEMR_TIMEOUT_MS.
    CDSS_IDEMPOTENCY_LEASE_MS: z.coerce.number().int().positive().default(30_000),
    FHIR_URL: httpUrl.optional(),
    ORTHANC_URL: httpUrl.optional(),
    ORTHANC_USERNAME: z.string().min(1).optional(),
    ORTHANC_PASSWORD: z.string().min(1).optional(),
    AMQP_URL: z.url({ protocol: /^amqps?$/ }).optional(),
    MYSQL_URL: z.url({ protocol: /^mysql$/ }).optional(),
  })
  .superRefine((env, ctx) => {
    if (env.FHIR_BACKEND_TOKEN_URL && !env.FHIR_BACKEND_CLIENT_ID)
      ctx.addIssue({
        code: 'custom',
        path: ['FHIR_BACKEND_CLIENT_ID'],
        message: 'required with FHIR_BACKEND_TOKEN_URL',
      });
    if (env.CDSS_MODE === 'sandbox') {
      if (env.CDSS_PROCESSES > 1)
        ctx.addIssue({
          code: 'custom',
          path: ['CDSS_PROCESSES'],
          message: 'sandbox mode keeps its state in one process: run several only in connected mode',
        });
      if (env.CDSS_SANDBOX_ALLOW_UPSTREAMS) return;
      for (const name of UPSTREAM_VARIABLES.filter((variable) => env[variable])) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message:
            'sandbox mode runs on embedded systems: unset it, set CDSS_MODE=connected, or set ' +
            'CDSS_SANDBOX_ALLOW_UPSTREAMS=true to mix a real system into the sandbox',
        });
      }
      return;
    }
    for (const name of UPSTREAM_VARIABLES.filter((variable) => !env[variable])) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'connected mode needs it' });
    }
    if (!env.CDSS_AUTH_JWKS_URL && !env.CDSS_AUTH_PUBLIC_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['CDSS_AUTH_JWKS_URL'],
        message: 'connected mode needs CDSS_AUTH_JWKS_URL or CDSS_AUTH_PUBLIC_KEY',
      });
    }
    if (!env.CDSS_WEBHOOK_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['CDSS_WEBHOOK_SECRET'], message: 'connected mode needs a webhook secret' });
    }
    // The client assertions of SMART Backend Services are signed with the server's keys: a sandbox makes its own.
    for (const name of ['FHIR_BACKEND_CLIENT_ID', 'OPENEMR_BACKEND_CLIENT_ID'] as const)
      if (env[name] && !env.CDSS_SERVER_JWKS_FILE)
        ctx.addIssue({
          code: 'custom',
          path: ['CDSS_SERVER_JWKS_FILE'],
          message: `${name} needs the server's signing keys (a private JWKS with an RS384 or ES384 key)`,
        });
    if (env.OPENEMR_URL && !env.OPENEMR_CLIENT_ID) {
      ctx.addIssue({ code: 'custom', path: ['OPENEMR_CLIENT_ID'], message: 'required when OPENEMR_URL is set' });
    }
    if (env.ORTHANC_URL && Boolean(env.ORTHANC_USERNAME) !== Boolean(env.ORTHANC_PASSWORD)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ORTHANC_PASSWORD'],
        message: 'ORTHANC_USERNAME and ORTHANC_PASSWORD go together',
      });
    }
  });

/** The validated configuration. */
export type ServerConfig = z.infer<typeof envSchema>;

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * Whether a listen address only accepts connections from this machine.
 * @param host - `HOST`: a name or an IP address (`[::1]` brackets allowed)
 */
export function isLoopbackHost(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1');
  if (address.toLowerCase() === 'localhost') return true;
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Whether the sandbox's demo-token routes are served, and why: only in sandbox mode, and only on a loopback listen
 * address unless `CDSS_SANDBOX_EXPOSE=true` (which the server then warns about at start).
 * @param config - the validated configuration
 */
export function sandboxTokenAccess(config: ServerConfig): 'loopback' | 'exposed' | 'off' {
  if (config.CDSS_MODE !== 'sandbox') return 'off';
  if (isLoopbackHost(config.HOST)) return 'loopback';
  return config.CDSS_SANDBOX_EXPOSE ? 'exposed' : 'off';
}

/** The configuration could not be read; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads and validates the configuration.
 * @param env - the environment, `process.env` by default
 * @throws {@link ConfigError} naming each wrong or missing variable (never echoing secret values)
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): ServerConfig {
  // Empty strings count as unset, so `FOO= npm start` behaves like no FOO.
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const result = envSchema.safeParse(present);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`),
  );
}
