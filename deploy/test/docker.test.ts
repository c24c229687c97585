/**
 * deploy/compose.yaml and the Dockerfiles, checked with what runs here without a Docker engine:
 * docker-compose v1 `config` (schema, interpolation, depends_on conditions), dockerfilelint, and structural checks
 * (pinned tags, official images, health checks, start order, volumes for state, non-root multi-stage images).
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { DEPLOY_DIR, imageMemoryEnv, REPO_ROOT, requireBinaries, run, tempDir } from './support.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  healthcheck?: { test: string[] | string };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  ports?: string[];
  user?: string;
  environment?: Record<string, string>;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const COMPOSE_FILE = join(DEPLOY_DIR, 'compose.yaml');
const ENV_EXAMPLE = join(DEPLOY_DIR, '.env.example');
const DOCKERFILES = readdirSync(join(DEPLOY_DIR, 'docker'))
  .filter((f) => f.endsWith('.Dockerfile'))
  .map((f) => join(DEPLOY_DIR, 'docker', f));
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as Compose;

/** A tag that names a version: not `latest`/`stable`/`mainline`, with a digit in it. */
function pinned(image: string): boolean {
  const m = /^([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9._-]+)$/.exec(image);
  if (!m) return false;
  const tag = m[2]!;
  return /\d/.test(tag) && !/^(latest|stable|mainline|edge|lts|current)(-|$)/.test(tag);
}

/** Named volumes (not bind mounts) of a service. */
function namedVolumes(service: Service): string[] {
  return (service.volumes ?? [])
    .map((v) => v.split(':')[0]!)
    .filter((src) => !src.startsWith('.') && !src.startsWith('/') && !src.startsWith('$'));
}

describe('deploy/compose.yaml, structure', () => {
  it('pins every image by a version tag, including FROM lines of the Dockerfiles', () => {
    const unpinned = Object.entries(compose.services).filter(([, s]) => !s.image || !pinned(s.image));
    expect(unpinned.map(([name, s]) => `${name}: ${s.image ?? '(no image)'}`)).toEqual([]);
    for (const file of DOCKERFILES) {
      const froms = [...readFileSync(file, 'utf8').matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
      expect(froms.length, file).toBeGreaterThanOrEqual(2);
      expect(
        froms.filter((image) => !pinned(image)),
        file,
      ).toEqual([]);
    }
    // the checker itself
    expect(
      ['nginx', 'nginx:latest', 'mysql:8', 'grafana/grafana:11.3.1', 'rabbitmq:stable-management'].map(pinned),
    ).toEqual([false, false, true, true, false]);
  });

  it('runs Node.js images of the newest line CI tests the suite on (Node 20 is past end of life)', () => {
    // .ci/run: NODE_LINES=${CDSS_NODE_LINES-22.23.5 24.22.3}
    const lines = /^NODE_LINES=\$\{CDSS_NODE_LINES-([\d. ]+)\}/m.exec(readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8'));
    expect(lines, '.ci/run names its Node.js lines').not.toBeNull();
    const tested = lines![1]!.trim().split(/\s+/);
    const newest = tested.sort((a, b) => Number(b.split('.')[0]) - Number(a.split('.')[0]))[0]!;
    expect(Number(newest.split('.')[0])).toBeGreaterThanOrEqual(24);
    const nodeImages = [
      ...DOCKERFILES.flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/^FROM\s+(node:\S+)/gm)].map((m) => `${file}: ${m[1]}`),
      ),
      ...Object.entries(compose.services)
        .filter(([, s]) => s.image?.startsWith('node:'))
        .map(([name, s]) => `${name}: ${s.image}`),
    ];
    expect(nodeImages.length).toBeGreaterThanOrEqual(5);
    expect(nodeImages.filter((line) => !line.endsWith(`: node:${newest}-bookworm-slim`))).toEqual([]);
  });

  it('runs the official images of every system of the architecture', () => {
    const repos = Object.values(compose.services).map((s) => s.image!.split(':')[0]);
    for (const repo of [
      'openemr/openemr',
      'hapiproject/hapi',
      'orthancteam/orthanc',
      'rabbitmq',
      'mysql',
      'prom/prometheus',
      'prom/alertmanager',
      'grafana/grafana',
      'nginx',
    ]) {
      expect(repos).toContain(repo);
    }
    expect(compose.services['cdss-server']?.build?.dockerfile).toBe('deploy/docker/server.Dockerfile');
    expect(compose.services['ai-worker']?.build?.dockerfile).toBe('deploy/docker/worker.Dockerfile');
    expect(JSON.stringify(compose.services['orthanc'])).toContain('DICOM_WEB_PLUGIN_ENABLED');
  });

  it('gives every service a health check (HAPI excepted: distroless image) and starts dependents after it is healthy', () => {
    const withoutHealth = Object.entries(compose.services)
      .filter(([, s]) => !s.healthcheck)
      .map(([name]) => name);
    expect(withoutHealth).toEqual(['hapi-fhir']);
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(`${name} -> ${dep}: ${condition}`).toBe(
          `${name} -> ${dep}: ${compose.services[dep]!.healthcheck ? 'service_healthy' : 'service_started'}`,
        );
      }
    }
    expect(Object.keys(compose.services['cdss-server']?.depends_on ?? {}).sort()).toEqual([
      'hapi-fhir',
      'mysql',
      'openemr',
      'orthanc',
      'rabbitmq',
    ]);
    expect(Object.keys(compose.services['nginx']?.depends_on ?? {})).toEqual(['cdss-server']);
  });

  it('keeps every piece of state in a declared named volume', () => {
    const stateful = {
      mysql: '/var/lib/mysql',
      rabbitmq: '/var/lib/rabbitmq',
      openemr: '/sites',
      'hapi-fhir': '/app/target',
      orthanc: '/var/lib/orthanc/db',
      'cdss-server': '/data',
      prometheus: '/prometheus',
      alertmanager: '/alertmanager',
      grafana: '/var/lib/grafana',
    };
    for (const [name, path] of Object.entries(stateful)) {
      const service = compose.services[name]!;
      const mount = (service.volumes ?? []).find((v) => v.split(':')[1]?.endsWith(path));
      expect(mount, `${name} keeps ${path} in a volume`).toBeDefined();
      expect(namedVolumes(service).length, name).toBeGreaterThan(0);
    }
    const declared = Object.keys(compose.volumes);
    const used = Object.values(compose.services).flatMap(namedVolumes);
    expect(used.filter((v) => !declared.includes(v))).toEqual([]);
    expect(declared.filter((v) => !used.includes(v))).toEqual([]);
  });

  it('mounts configuration files that exist in deploy/, and publishes only nginx (and Orthanc DICOM) beyond loopback', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const src = volume.split(':')[0]!;
        if (src.startsWith('./')) expect(existsSync(join(DEPLOY_DIR, src)), `${name}: ${src}`).toBe(true);
      }
      for (const port of service.ports ?? []) {
        if (!port.startsWith('127.0.0.1:')) expect(['nginx', 'orthanc'], `${name} publishes ${port}`).toContain(name);
      }
    }
  });

  it('builds small non-root multi-stage images with a health check', () => {
    for (const file of DOCKERFILES) {
      const text = readFileSync(file, 'utf8');
      const stages = text.split(/^FROM\s+/m).slice(1);
      expect(stages.length, file).toBeGreaterThanOrEqual(2);
      const final = stages.at(-1)!;
      expect(final, file).toMatch(/^-?\S+-slim\b|^\S+-alpine\b|^\S+-bookworm-slim\b/);
      expect(final, file).toMatch(/^USER\s+(node|\d{4,})\s*$/m);
      expect(final, file).toMatch(/^HEALTHCHECK\s/m);
      expect(final, file).toMatch(/^COPY --from=build/m);
      expect(final, file).not.toMatch(/pnpm install|npm install/);
      expect(existsSync(`${file}.dockerignore`), `${file}.dockerignore`).toBe(true);
    }
  });

  it('bounds the Node.js processes’ memory in the images, and compose runs them with the same settings', () => {
    for (const [image, service] of [
      ['server', 'cdss-server'],
      ['worker', 'ai-worker'],
    ] as const) {
      const env = imageMemoryEnv(image);
      // in the runtime stage, not only the build's
      const final = readFileSync(join(DEPLOY_DIR, 'docker', `${image}.Dockerfile`), 'utf8')
        .split(/^FROM\s+/m)
        .at(-1)!;
      expect(final, image).toContain(`NODE_OPTIONS=${env.NODE_OPTIONS}`);
      expect(env.NODE_OPTIONS, image).toMatch(/^--max-old-space-size=\d+$/);
      expect(env.MALLOC_ARENA_MAX, image).toBe('2');
      const environment = compose.services[service]!.environment!;
      expect(
        { NODE_OPTIONS: environment['NODE_OPTIONS'], MALLOC_ARENA_MAX: environment['MALLOC_ARENA_MAX'] },
        service,
      ).toEqual(env);
    }
  });
});

const composeBin = requireBinaries('deploy/compose.yaml check', ['docker-compose'], 'docker-compose');
describe.skipIf(!composeBin)('deploy/compose.yaml, docker-compose config', () => {
  it('validates with the example environment and refuses to run without the secrets', () => {
    const ok = run(composeBin!['docker-compose'], ['-f', COMPOSE_FILE, '--env-file', ENV_EXAMPLE, 'config', '-q']);
    expect(ok.status, ok.stderr).toBe(0);
    const normalised = parse(
      run(composeBin!['docker-compose'], ['-f', COMPOSE_FILE, '--env-file', ENV_EXAMPLE, 'config']).stdout,
    ) as Compose;
    expect(Object.keys(normalised.services).length).toBe(Object.keys(compose.services).length);
    expect(JSON.stringify(normalised.services['cdss-server'])).toContain('amqp://cdss:change-me-rabbit@rabbitmq:5672');
    // without deploy/.env every secret is missing: compose stops with the variable's message
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/PASSWORD|SECRET|CDSS_|OPENEMR_/.test(k)),
    );
    const emptyEnv = join(tempDir('compose-env'), 'empty.env');
    writeFileSync(emptyEnv, '');
    const missing = run(composeBin!['docker-compose'], ['-f', COMPOSE_FILE, '--env-file', emptyEnv, 'config', '-q'], {
      env,
    });
    rmSync(dirname(emptyEnv), { recursive: true, force: true });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/set \w+ in deploy\/\.env/);
  });

  it('reports a broken file (the checker can fail)', () => {
    const file = join(tempDir('compose'), 'compose.yaml');
    writeFileSync(file, "services:\n  web:\n    image: 'nginx:1.27.3-alpine'\n    bogus_key: 1\n");
    const broken = run(composeBin!['docker-compose'], ['-f', file, 'config', '-q']);
    rmSync(dirname(file), { recursive: true, force: true });
    expect(broken.status).not.toBe(0);
    expect(broken.stderr).toContain('bogus_key');
  });
});

describe('Dockerfiles, dockerfilelint', () => {
  it('passes dockerfilelint with no issue', () => {
    const lint = run(join(REPO_ROOT, 'node_modules', '.bin', 'dockerfilelint'), DOCKERFILES);
    expect(lint.status, lint.stdout).toBe(0);
    expect(lint.stdout.match(/Issues: None found/g)?.length).toBe(DOCKERFILES.length);
  });
});
