/**
 * A deployment of the CDSS on one machine, as deploy/compose.yaml runs it: N reference-server processes in connected
 * mode behind the real nginx from deploy/nginx, one AI worker process (`worker-main`), and the OpenEMR emulator as its
 * own process (OpenEMR cannot run here), on the real RabbitMQ, MariaDB, Orthanc and HAPI FHIR whose URLs are given.
 * Every process can be killed (SIGKILL) and restarted on its port. Used by the two-instance suite and the soak.
 */
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { CDSS_SCOPES, createOpenEmrClient, type OpenEmrClient } from '@cdss/openemr-client';
import { SEED_ADMIN, SEED_CLIENT } from '@cdss/sandbox';
import { renderNginx } from '../../../deploy/test/nginx-render.js';
import {
  fetchRaw,
  freePort,
  GiveUp,
  imageMemoryEnv,
  MEMORY_ENV,
  run,
  selfSignedCertificate,
  spawnService,
  tempDir,
  waitFor,
  type Spawned,
} from '../../../deploy/test/support.js';

/** The real services the deployment runs on. */
export interface DeploymentServices {
  amqpUrl: string;
  mysqlUrl: string;
  fhirUrl: string;
  /** Orthanc's REST root with its credentials in the URL (`http://user:pass@host:port`). */
  orthancUrl: string;
}

/** Options of {@link startDeployment}. */
export interface DeploymentOptions {
  services: DeploymentServices;
  /** Server instances behind nginx. Default 2. */
  instances?: number;
  /** Start the AI worker process. Default true. */
  worker?: boolean;
  /** Extra environment of every server instance. */
  serverEnv?: Record<string, string>;
  /** Extra environment of the worker. */
  workerEnv?: Record<string, string>;
  /** nginx's per-IP `limit_req` rate; a load test from one address raises it. Default the deployment's. */
  apiRate?: string;
  apiBurst?: number;
  nginx: string;
  openssl: string;
  /**
   * Sample each Node.js process's memory (RSS, heap, external) into `<dir>/<process name>.jsonl` every `intervalMs`
   * (test/memory-sampler.ts): what the soak reads to tell a leak from warm-up.
   */
  memorySamples?: { dir: string; intervalMs?: number };
  /** Where SIGUSR2 makes a sampled process write a heap snapshot (with `memorySamples`). */
  heapSnapshotDir?: string;
  /**
   * The servers' and the worker's memory settings (`NODE_OPTIONS`, `MALLOC_ARENA_MAX`): `image` (default) those the
   * Dockerfiles set, read from them, so the processes run as deployed; `node-defaults` none (V8 sizes its heap from
   * this machine's RAM, glibc's default arenas), to measure what the settings change.
   */
  memorySettings?: 'image' | 'node-defaults';
}

/** One process of the deployment. */
export interface DeployedProcess {
  name: string;
  port: number;
  /** Direct URL (not through nginx). */
  url: string;
  pid(): number;
  /** Resident set size now, in bytes (from /proc). */
  rss(): number;
  /** Sends the signal and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and waits until it is ready. */
  restart(): Promise<void>;
  alive(): boolean;
  output(): string;
}

/** A running deployment. */
export interface Deployment {
  /** nginx's HTTPS URL (`https://localhost:<port>`), trusted with `ca`. */
  url: string;
  ca: string;
  servers: DeployedProcess[];
  worker: DeployedProcess | undefined;
  emulator: DeployedProcess;
  nginx: DeployedProcess;
  webhookSecret: string;
  /** A bearer token as the hospital's identity provider would issue it. */
  tokenFor(userId: string, role: string): Promise<string>;
  stop(): Promise<void>;
}

const ISSUER = 'https://idp.deployment.test';
const MEMORY_SAMPLER = new URL('./memory-sampler.ts', import.meta.url).href;

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A process started by `start`, restartable on its port, ready when `ready` resolves true. */
function managed(
  name: string,
  port: number,
  url: string,
  start: () => Spawned,
  ready: () => Promise<boolean>,
  timeoutMs = 120_000,
): DeployedProcess & { started: Promise<void> } {
  let current: Spawned;
  let exited = false;
  const launch = async (): Promise<void> => {
    current = start();
    exited = false;
    void current.exited.then(() => (exited = true));
    await waitFor(
      `${name} ready`,
      async () => {
        if (exited)
          throw new GiveUp(`${name} exited: ${current.stderr().slice(-3000)}${current.stdout().slice(-1000)}`);
        return ready();
      },
      timeoutMs,
    );
  };
  const started = launch();
  return {
    name,
    port,
    url,
    started,
    pid: () => current.pid,
    rss: () => rssOf(current.pid),
    alive: () => !exited,
    output: () => `${current.stdout()}${current.stderr()}`,
    async kill(signal = 'SIGTERM') {
      await current.stop(signal);
    },
    restart: launch,
  };
}

const ok = async (url: string): Promise<boolean> => {
  try {
    return (await fetchRaw(url)).status === 200;
  } catch {
    return false;
  }
};

/**
 * Starts the deployment: the OpenEMR emulator, the server instances, the worker, then nginx in front.
 * @param options - services, instance count, extra environment
 */
export async function startDeployment(options: DeploymentOptions): Promise<Deployment> {
  const dir = tempDir('deployment');
  chmodSync(dir, 0o755); // nginx workers run as nobody
  const sampler = options.memorySamples;
  const imageSettings = (options.memorySettings ?? 'image') === 'image';
  /** `image`: the image's memory settings; none: the emulator (a stand-in for OpenEMR, not one of our images). */
  const node = (name: string, script: string, env: Record<string, string>, image?: 'server' | 'worker'): Spawned =>
    spawnService(
      process.execPath,
      ['--conditions=@cdss/source', '--import', 'tsx', ...(sampler ? ['--import', MEMORY_SAMPLER] : []), script],
      {
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([key]) => !(MEMORY_ENV as readonly string[]).includes(key)),
          ),
          ...(image && imageSettings ? imageMemoryEnv(image) : {}),
          ...env,
          ...(sampler
            ? {
                CDSS_MEMORY_SAMPLE_FILE: join(sampler.dir, `${name}.jsonl`),
                CDSS_MEMORY_SAMPLE_MS: String(sampler.intervalMs ?? 5000),
                ...(options.heapSnapshotDir ? { CDSS_HEAP_SNAPSHOT_DIR: options.heapSnapshotDir } : {}),
              }
            : {}),
        },
      },
    );
  const started: Array<DeployedProcess & { started: Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    for (const p of [...started].reverse()) await p.kill('SIGTERM').catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const orthanc = new URL(options.services.orthancUrl);
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const webhookSecret = `deployment-webhook-secret-${Math.random().toString(36).slice(2)}`;

    const emulatorPort = await freePort();
    const emulator = managed(
      'openemr-emulator',
      emulatorPort,
      `http://127.0.0.1:${emulatorPort}`,
      () =>
        node('openemr-emulator', 'examples/reference-server/test/openemr-emulator-process.ts', {
          PORT: String(emulatorPort),
          DATA_DIR: join(dir, 'openemr'),
        }),
      async () => /^ready/m.test(emulator.output()),
    );
    started.push(emulator);
    await emulator.started;

    const serverEnv: Record<string, string> = {
      CDSS_MODE: 'connected',
      HOST: '127.0.0.1',
      CDSS_LOG_LEVEL: 'warn',
      CDSS_WORKER: 'off',
      CDSS_TRUST_PROXY: 'loopback',
      CDSS_AUTH_PUBLIC_KEY: await exportSPKI(publicKey),
      CDSS_AUTH_ISSUER: ISSUER,
      CDSS_WEBHOOK_SECRET: webhookSecret,
      CDSS_PUBLIC_URL: 'https://localhost',
      OPENEMR_URL: emulator.url,
      OPENEMR_CLIENT_ID: SEED_CLIENT.clientId,
      OPENEMR_CLIENT_SECRET: SEED_CLIENT.clientSecret,
      OPENEMR_USERNAME: SEED_ADMIN.username,
      OPENEMR_PASSWORD: SEED_ADMIN.password,
      FHIR_URL: options.services.fhirUrl,
      ORTHANC_URL: `${orthanc.protocol}//${orthanc.host}`,
      ORTHANC_USERNAME: decodeURIComponent(orthanc.username),
      ORTHANC_PASSWORD: decodeURIComponent(orthanc.password),
      AMQP_URL: options.services.amqpUrl,
      MYSQL_URL: options.services.mysqlUrl,
      ...options.serverEnv,
    };
    const servers: Array<DeployedProcess & { started: Promise<void> }> = [];
    for (let i = 0; i < (options.instances ?? 2); i++) {
      const port = await freePort();
      const name = `server-${String.fromCharCode(97 + i)}`;
      const server = managed(
        name,
        port,
        `http://127.0.0.1:${port}`,
        () =>
          node(
            name,
            'examples/reference-server/src/main.ts',
            { ...serverEnv, PORT: String(port), CDSS_DATA_DIR: join(dir, name) },
            'server',
          ),
        () => ok(`http://127.0.0.1:${port}/healthz`),
      );
      servers.push(server);
      started.push(server);
    }
    await Promise.all(servers.map((s) => s.started));

    let worker: (DeployedProcess & { started: Promise<void> }) | undefined;
    if (options.worker ?? true) {
      const port = await freePort();
      worker = managed(
        'ai-worker',
        port,
        `http://127.0.0.1:${port}`,
        () =>
          node(
            'ai-worker',
            'examples/reference-server/src/worker-main.ts',
            {
              AMQP_URL: options.services.amqpUrl,
              ORTHANC_URL: serverEnv['ORTHANC_URL']!,
              ORTHANC_USERNAME: serverEnv['ORTHANC_USERNAME']!,
              ORTHANC_PASSWORD: serverEnv['ORTHANC_PASSWORD']!,
              WORKER_PORT: String(port),
              CDSS_LOG_LEVEL: 'warn',
              ...options.workerEnv,
            },
            'worker',
          ),
        () => ok(`http://127.0.0.1:${port}/healthz`),
      );
      started.push(worker);
      await worker.started;
    }

    // nginx in front, with a certificate of its own
    const certDir = join(dir, 'certs');
    const ca = selfSignedCertificate(options.openssl, certDir);
    const httpsPort = await freePort();
    const prefix = join(dir, 'nginx');
    const conf = renderNginx({
      dir: prefix,
      httpPort: await freePort(),
      httpsPort,
      certDir,
      upstreams: servers.map((s) => `127.0.0.1:${s.port}`),
      trustedProxy: '127.0.0.2',
      ...(options.apiRate ? { apiRate: options.apiRate } : {}),
      ...(options.apiBurst ? { apiBurst: options.apiBurst } : {}),
    });
    const pid = `pid ${join(prefix, 'nginx.pid')};`;
    const nginxArgs = ['-e', join(prefix, 'error.log'), '-p', prefix, '-c', conf, '-g'];
    const check = run(options.nginx, ['-t', '-q', ...nginxArgs, pid]);
    if (check.status !== 0) throw new Error(`nginx -t: ${check.stderr}`);
    const url = `https://localhost:${httpsPort}`;
    const nginx = managed(
      'nginx',
      httpsPort,
      url,
      () => spawnService(options.nginx, [...nginxArgs, `daemon off; ${pid}`]),
      async () => {
        try {
          return (await fetchRaw(`${url}/healthz`, { ca })).status === 200;
        } catch {
          return false;
        }
      },
      30_000,
    );
    started.push(nginx);
    await nginx.started;

    return {
      url,
      ca,
      servers,
      worker,
      emulator,
      nginx,
      webhookSecret,
      tokenFor: (userId, role) =>
        new SignJWT({ name: userId, roles: [role] })
          .setProtectedHeader({ alg: 'RS256' })
          .setSubject(userId)
          .setIssuer(ISSUER)
          .setAudience('cdss')
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(privateKey),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * A client of the deployment's OpenEMR (the emulator), logged in as its seeded administrator: how tests look at the
 * source of truth directly, past the server and its cache.
 * @param deployment - the running deployment
 */
export function emulatorClient(deployment: Pick<Deployment, 'emulator'>): OpenEmrClient {
  return createOpenEmrClient({
    baseUrl: deployment.emulator.url,
    auth: {
      kind: 'password',
      clientId: SEED_CLIENT.clientId,
      clientSecret: SEED_CLIENT.clientSecret,
      username: SEED_ADMIN.username,
      password: SEED_ADMIN.password,
      scope: CDSS_SCOPES,
    },
  });
}
