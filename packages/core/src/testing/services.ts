/**
 * Lets a test suite declare the real service it needs.
 *
 * Under `CI=true` a missing service fails the suite (CI starts every service, so absence is a bug);
 * elsewhere the suite is skipped with one line saying how to start the service.
 */
import { connect } from 'node:net';

/** The real services the project's scripts can start on 127.0.0.1 (`scripts/services/services.sh`). */
export type ServiceName = 'orthanc' | 'rabbitmq' | 'mariadb' | 'hapi-fhir' | 'nginx' | 'prometheus' | 'alertmanager';

interface ServiceDefault {
  /** Environment variable that overrides the URL. */
  env: string;
  /** URL the scripts start the service on. */
  url: string;
}

/**
 * Where each service listens when started by `scripts/services/services.sh` (ports below 32768).
 * Credentials here are throw-away test credentials of services bound to loopback only.
 */
export const SERVICE_DEFAULTS: Readonly<Record<ServiceName, ServiceDefault>> = {
  orthanc: { env: 'CDSS_TEST_ORTHANC_URL', url: 'http://ci:ci-secret@127.0.0.1:28042' },
  rabbitmq: { env: 'CDSS_TEST_AMQP_URL', url: 'amqp://ci:ci-pass@127.0.0.1:25682' },
  mariadb: { env: 'CDSS_TEST_MYSQL_URL', url: 'mysql://app:app-pass@127.0.0.1:23306/appdb' },
  'hapi-fhir': { env: 'CDSS_TEST_FHIR_URL', url: 'http://127.0.0.1:28090/fhir' },
  nginx: { env: 'CDSS_TEST_NGINX_URL', url: 'https://127.0.0.1:28443' },
  prometheus: { env: 'CDSS_TEST_PROMETHEUS_URL', url: 'http://127.0.0.1:29090' },
  alertmanager: { env: 'CDSS_TEST_ALERTMANAGER_URL', url: 'http://127.0.0.1:29093' },
};

/** What {@link requireService} found. */
export interface ServiceProbe {
  name: ServiceName;
  /** The service's URL (from the environment or the default), credentials included. */
  url: string;
  /** True when its port accepted a TCP connection. */
  available: boolean;
  /** Why it is unavailable, with how to start it. */
  reason?: string;
}

function defaultPort(url: URL): number {
  if (url.port) return Number(url.port);
  return { 'http:': 80, 'https:': 443, 'amqp:': 5672, 'mysql:': 3306 }[url.protocol] ?? 80;
}

function tcpOpen(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Probes a real service for a test suite. Use it at the top of a test file:
 *
 * @example
 * ```ts
 * const rabbit = await requireService('rabbitmq');
 * describe.skipIf(!rabbit.available)('AMQP transport on the real RabbitMQ', () => { ... });
 * ```
 *
 * @param name - the service
 * @param options - `ci` overrides the `CI` environment check; `timeoutMs` bounds the TCP probe
 * @returns the probe; under CI a missing service throws instead, failing the suite
 * @throws Error when `CI=true` and the service does not answer
 */
export async function requireService(
  name: ServiceName,
  options: { ci?: boolean; timeoutMs?: number; log?: (line: string) => void } = {},
): Promise<ServiceProbe> {
  const { env, url: fallback } = SERVICE_DEFAULTS[name];
  const url = process.env[env] ?? fallback;
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const available = await tcpOpen(host, defaultPort(parsed), options.timeoutMs ?? 1_000);
  if (available) return { name, url, available };
  const reason = `${name} is not running at ${parsed.host}: start it with \`npm run services -- start ${name}\` (or set ${env})`;
  const ci = options.ci ?? process.env['CI'] === 'true';
  if (ci) throw new Error(`CI=true and ${reason}`);
  (options.log ?? ((line: string) => process.stderr.write(`${line}\n`)))(`[skip] ${reason}`);
  return { name, url, available, reason };
}
