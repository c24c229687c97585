/**
 * PRIVATE RabbitMQ and MariaDB instances (own folder, own ports) started by scripts/services/services.sh, for tests
 * and the soak that stop or restart them for real, or that must not share queues and tables with other suites
 * running at the same time. Stopped by the script, which signals the recorded PIDs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@cdss/core/testing';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/services/services.sh');
const run = promisify(execFile);

/** A private service the script starts and stops. */
export type PrivateServiceName = 'rabbitmq' | 'mariadb';

/** Running private services. */
export interface PrivateServices {
  /** `amqp://…` of the private RabbitMQ (when started). */
  amqpUrl: string;
  /** `mysql://…` of the private MariaDB (when started). */
  mysqlUrl: string;
  start(name: PrivateServiceName): Promise<void>;
  stop(name: PrivateServiceName): Promise<void>;
  /** Stops every one and removes its folder. */
  close(): Promise<void>;
}

/**
 * Starts private instances.
 * @param names - which services
 */
export async function startPrivateServices(names: readonly PrivateServiceName[]): Promise<PrivateServices> {
  const dir = mkdtempSync(join(tmpdir(), 'cdss-private-services-'));
  const ports = {
    AMQP_PORT: await freePort(),
    EPMD_PORT: await freePort(),
    RMQ_DIST_PORT: await freePort(),
    RMQ_MGMT_PORT: await freePort(),
    DB_PORT: await freePort(),
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDSS_SERVICES_DIR: dir,
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
  };
  const script = (command: 'start' | 'stop', name: PrivateServiceName) =>
    run('bash', [SCRIPT, command, name], { env, timeout: 180_000 }).then(() => undefined);
  const services: PrivateServices = {
    amqpUrl: `amqp://ci:ci-pass@127.0.0.1:${ports.AMQP_PORT}?heartbeat=5`,
    mysqlUrl: `mysql://app:app-pass@127.0.0.1:${ports.DB_PORT}/appdb`,
    start: (name) => script('start', name),
    stop: (name) => script('stop', name),
    async close() {
      for (const name of [...names].reverse()) await script('stop', name).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const name of names) await services.start(name);
  } catch (error) {
    await services.close();
    throw error;
  }
  return services;
}
