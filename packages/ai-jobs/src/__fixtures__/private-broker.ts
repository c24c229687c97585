// A private RabbitMQ for fault tests: its own folder and ports, started with scripts/services/services.sh and
// stopped for real by its recorded PID. The shared broker is never touched.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const script = join(repoRoot, 'scripts', 'services', 'services.sh');

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface PrivateBroker {
  url: string;
  /** SIGTERM to the broker's recorded PID; resolves once the process is gone and the port is closed. */
  stop(): Promise<void>;
  /** Starts it again on the same data (durable queues and persistent messages survive). */
  start(): Promise<void>;
  /** Stops broker and epmd (by PID, via the script) and removes the folder. */
  destroy(): Promise<void>;
}

/** Starts a private broker on free ports in 26000–31999 (below the ephemeral range). */
export async function startPrivateBroker(): Promise<PrivateBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'cdss-aijobs-fault-'));
  let env: NodeJS.ProcessEnv = {};
  let amqpPort = 0;
  let ports: number[] = [];
  for (let tries = 0; ; tries++) {
    const base = 26000 + 3 * Math.floor(Math.random() * 1990);
    ports = [base, base + 1, base + 2];
    if ((await Promise.all(ports.map(portOpen))).some(Boolean)) continue;
    amqpPort = base;
    env = {
      ...process.env,
      CDSS_SERVICES_DIR: dir,
      AMQP_PORT: String(base),
      EPMD_PORT: String(base + 1),
      RMQ_DIST_PORT: String(base + 2),
      RMQ_NODENAME: `aijobs${base}@localhost`,
    };
    try {
      await run('bash', [script, 'start', 'rabbitmq'], { env, timeout: 120_000 });
      break;
    } catch (error) {
      await run('bash', [script, 'stop', 'rabbitmq'], { env }).catch(() => {});
      if (tries >= 2) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const pidFile = join(dir, 'rabbitmq', 'rabbitmq.pid');
  return {
    url: `amqp://ci:ci-pass@127.0.0.1:${amqpPort}`,
    async stop() {
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      process.kill(pid, 'SIGTERM');
      // the wrapper's PID goes first; the Erlang VM may hold the AMQP and distribution ports a moment longer
      const busy = async (): Promise<boolean> => alive(pid) || (await portOpen(ports[0]!)) || (await portOpen(ports[2]!));
      for (let i = 0; i < 300 && (await busy()); i++) await new Promise((r) => setTimeout(r, 100));
    },
    async start() {
      for (let attempt = 1; ; attempt++) {
        try {
          await run('bash', [script, 'start', 'rabbitmq'], { env, timeout: 120_000 });
          return;
        } catch (error) {
          if (attempt >= 3) throw error;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    },
    async destroy() {
      await run('bash', [script, 'stop', 'rabbitmq'], { env, timeout: 60_000 }).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
