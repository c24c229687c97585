/**
 * Entry point of the reference CDSS server. `npm start` runs it in sandbox mode (everything embedded); environment
 * variables point each port at a real system (see the README and `config.ts`).
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { SEED_ADMIN } from '@cdss/sandbox';
import { loadConfig, ConfigError, sandboxTokenAccess } from './config.js';
import { createLogger } from './logger.js';
import { composeServer, DEMO_USERS } from './compose.js';
import { runPrimary } from './cluster.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.CDSS_LOG_LEVEL);
  if (config.CDSS_PROCESSES > 1 && cluster.isPrimary) {
    runPrimary(config.CDSS_PROCESSES, logger, config.CDSS_SHUTDOWN_GRACE_MS);
    return;
  }
  const composed = await composeServer(config, logger, version);
  const port = await composed.server.listen();
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  logger.info({ url, mode: config.CDSS_MODE }, 'CDSS reference server listening');
  if (config.CDSS_MODE === 'sandbox') {
    process.stdout.write(
      [
        '',
        `CDSS reference server (sandbox mode) at ${url}`,
        `  Dashboard:  ${url}/`,
        `  API docs:   ${url}/docs  (OpenAPI: ${url}/openapi.json)`,
        `  Demo users: ${DEMO_USERS.map((u) => `${u.id} (${u.role})`).join(', ')}`,
        sandboxTokenAccess(config) === 'off'
          ? `  Tokens:     off (HOST ${config.HOST} is not loopback; CDSS_SANDBOX_EXPOSE=true serves them anyway)`
          : `  A token:    curl -s -X POST ${url}/api/sandbox/token -H 'content-type: application/json' -d '{"userId":"demo-physician"}'`,
        ...(composed.embedded.openemr
          ? [
              `  OpenEMR:    ${composed.embedded.openemr}/interface/login/login.php?site=default (${SEED_ADMIN.username} / ${SEED_ADMIN.password}; a patient → SMART Enabled Apps launches the dashboard)`,
            ]
          : []),
        ...(sandboxTokenAccess(config) === 'off'
          ? []
          : [
              `  CDS Hooks:  curl -s -X POST ${url}/api/sandbox/cds-hooks/patient-view -H 'content-type: application/json' -d '{}'  (a signed call, ready to send)`,
            ]),
        `  Data:       ${config.CDSS_DATA_DIR} (delete it to start over)`,
        '',
      ].join('\n') + '\n',
    );
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), config.CDSS_SHUTDOWN_GRACE_MS + 5_000);
    force.unref();
    composed.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`CDSS server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
