/**
 * The Helm chart in deploy/helm/cdss, checked without a cluster: `helm lint`, `helm template`, and every rendered
 * manifest against the Kubernetes API's own schemas (kubeconform, strict, schemas generated from the OpenAPI document
 * of the k8s.io/kubernetes Go module). helm, kubeconform and the schemas are built by deploy/helm/install-tools.sh
 * (`.ci/run` runs it); nothing is fetched here. Without them the suite skips, except under CI=true.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { imageMemoryEnv, REPO_ROOT, run, tempDir } from './support.js';

const CHART = join(REPO_ROOT, 'deploy/helm/cdss');
const HOSPITAL_VALUES = join(CHART, 'ci/values-hospital.yaml');
const BIN = join(REPO_ROOT, '.tools/go/bin');
const HELM = join(BIN, 'helm');
const KUBECONFORM = join(BIN, 'kubeconform');
const SCHEMA_ROOT = join(REPO_ROOT, '.tools/kubernetes-schemas');
const SCHEMAS = existsSync(SCHEMA_ROOT) ? readdirSync(SCHEMA_ROOT).map((v) => join(SCHEMA_ROOT, v))[0] : undefined;

const missing = [HELM, KUBECONFORM].filter((path) => !existsSync(path));
if (!SCHEMAS) missing.push(join(SCHEMA_ROOT, '<version>'));
if (missing.length > 0) {
  const reason = `${missing.join(', ')} missing (run \`bash deploy/helm/install-tools.sh\`)`;
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${reason}`);
  process.stderr.write(`[skip] helm chart suite: ${reason}\n`);
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** helm template with value files and --set pairs; the manifests, or the failure's message. */
function template(files: string[], set: string[] = []): { manifests: Manifest[]; yaml: string; error: string } {
  // For the Kubernetes version of the schemas (helm built from source otherwise assumes an old default).
  const kubeVersion = basename(SCHEMAS!);
  const args = ['template', 'cdss', CHART, '--namespace', 'cdss', '--kube-version', kubeVersion];
  args.push(...files.flatMap((f) => ['--values', f]));
  for (const pair of set) args.push('--set', pair);
  const result = run(HELM, args);
  if (result.status !== 0) return { manifests: [], yaml: '', error: result.stderr };
  const manifests = parseAllDocuments(result.stdout)
    .map((doc) => doc.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
  return { manifests, yaml: result.stdout, error: '' };
}

/** Validates rendered YAML against the generated schemas; kinds in `skip` have no schema there (CRDs). */
function kubeconform(yaml: string, skip: string[] = []): { status: number | null; output: string } {
  const file = join(tempDir('helm'), 'rendered.yaml');
  writeFileSync(file, yaml);
  const result = run(KUBECONFORM, [
    '-strict',
    '-summary',
    '-output',
    'text',
    '-schema-location',
    `${SCHEMAS}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
    ...(skip.length > 0 ? ['-skip', skip.join(',')] : []),
    file,
  ]);
  return { status: result.status, output: result.stdout + result.stderr };
}

const find = (manifests: Manifest[], kind: string, suffix: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix));
  if (!found) throw new Error(`no ${kind} *${suffix} in ${manifests.map((m) => `${m.kind}/${m.metadata.name}`)}`);
  return found;
};

type Container = {
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  securityContext?: Record<string, unknown>;
};
type PodSpec = {
  containers: Container[];
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  volumes?: Array<{ name: string }>;
};
const podSpec = (m: Manifest): PodSpec => (m.spec as { template: { spec: PodSpec } }).template.spec;

describe.runIf(missing.length === 0)('deploy/helm/cdss', () => {
  it('passes helm lint with a hospital’s values', () => {
    const result = run(HELM, ['lint', CHART, '--strict', '--values', HOSPITAL_VALUES]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('renders manifests that the Kubernetes API schemas accept (strict)', () => {
    const { yaml, error } = template([HOSPITAL_VALUES]);
    expect(error).toBe('');
    const result = kubeconform(yaml);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(
      /Summary: \d+ resources found in 1 file - Valid: \d+, Invalid: 0, Errors: 0, Skipped: 0/,
    );
  });

  it('has schemas that catch a misspelt field, a wrong type and a missing required field (the check can fail)', () => {
    const { yaml } = template([HOSPITAL_VALUES]);
    for (const [broken, expected] of [
      [yaml.replace('readinessProbe:', 'readinesProbe:'), /additional properties 'readinesProbe' not allowed/],
      [yaml.replace('containerPort: 8080', 'containerPort: eighty'), /containerPort/],
      [yaml.replace('  maxReplicas: 8\n', ''), /missing property 'maxReplicas'/],
      [yaml.replace('  scaleTargetRef:\n', '  scaleTargetRefs:\n'), /scaleTargetRef/],
    ] as const) {
      expect(broken).not.toBe(yaml);
      const result = kubeconform(broken);
      expect(result.status, result.output).not.toBe(0);
      expect(result.output).toMatch(expected);
    }
  });

  it('refuses to render without the configuration connected mode needs, naming what is missing', () => {
    const { error } = template([]);
    expect(error).toMatch(/is required/);
    const partial = template([HOSPITAL_VALUES], ['secrets.webhookSecret=short']);
    expect(partial.error).toContain('secrets.webhookSecret must be at least 32 characters');
    for (const value of ['auth.jwksUrl', 'external.openemr.url', 'external.fhir.url', 'secrets.mysqlUrl'])
      expect(template([HOSPITAL_VALUES], [`${value}=`]).error, value).toContain(`${value} is required`);
  });

  it('runs the server in connected mode behind an HPA and a PDB, probed on /healthz and /readyz', () => {
    const { manifests } = template([HOSPITAL_VALUES]);
    const server = find(manifests, 'Deployment', '-server');
    const container = podSpec(server).containers[0]!;
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const config = find(manifests, 'ConfigMap', '-server').data!;
    expect(config).toMatchObject({ CDSS_MODE: 'connected', CDSS_WORKER: 'off', HOST: '0.0.0.0' });
    expect(config['CDSS_SANDBOX_EXPOSE']).toBeUndefined();
    // Secrets reach the pods as secretKeyRefs, never as plain values in the Deployment or the ConfigMap.
    const secretEnv = container.env!.filter((e) => e.valueFrom).map((e) => e.name);
    expect(secretEnv).toEqual(expect.arrayContaining(['CDSS_WEBHOOK_SECRET', 'AMQP_URL', 'MYSQL_URL']));
    expect(JSON.stringify(server) + JSON.stringify(config)).not.toContain('ci-password');
    const hpa = find(manifests, 'HorizontalPodAutoscaler', '-server');
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: server.metadata.name } });
    expect(find(manifests, 'PodDisruptionBudget', '-server').spec).toMatchObject({ minAvailable: 1 });
    expect(server.spec!['replicas']).toBeUndefined(); // the HPA owns it
  });

  it('runs the worker as its own Deployment with the GPU node selector and tolerations from the values', () => {
    const { manifests } = template([HOSPITAL_VALUES]);
    const worker = podSpec(find(manifests, 'Deployment', '-worker'));
    expect(worker.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(worker.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(JSON.stringify(worker.containers[0])).toContain('"nvidia.com/gpu":1');
    expect(worker.containers[0]!.env).toContainEqual({
      name: 'CDSS_MODEL_PATH',
      value: '/models/custom/manifest.json',
    });
    expect(worker.volumes?.map((v) => v.name)).toContain('model');
  });

  it('bounds the server’s and the worker’s memory as the images do, inside the pods’ memory limits', () => {
    const { manifests } = template([HOSPITAL_VALUES]);
    const config = find(manifests, 'ConfigMap', '-server').data!;
    const server = imageMemoryEnv('server');
    expect({ NODE_OPTIONS: config['NODE_OPTIONS'], MALLOC_ARENA_MAX: config['MALLOC_ARENA_MAX'] }).toEqual(server);
    const workerEnv = podSpec(find(manifests, 'Deployment', '-worker')).containers[0]!.env!;
    const worker = imageMemoryEnv('worker');
    for (const [name, value] of Object.entries(worker))
      expect(workerEnv.find((e) => e.name === name)?.value, name).toBe(value);
    // V8's old space capped below each container's memory limit (Gi in the default values)
    for (const [component, env] of [
      ['server', server],
      ['worker', worker],
    ] as const) {
      const deployment = podSpec(find(manifests, 'Deployment', `-${component}`));
      const limit = (deployment.containers[0] as { resources?: { limits?: { memory?: string } } }).resources?.limits
        ?.memory;
      const limitMiB = Number(/^(\d+)Gi$/.exec(limit ?? '')?.[1]) * 1024;
      const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS)?.[1]);
      expect(heapMiB, component).toBeLessThanOrEqual(limitMiB / 2);
    }
    // an operator's own value reaches the pods
    const raised = template([HOSPITAL_VALUES], ['server.nodeOptions=--max-old-space-size=1024']);
    expect(find(raised.manifests, 'ConfigMap', '-server').data!['NODE_OPTIONS']).toBe('--max-old-space-size=1024');
  });

  it('lets only the ingress controller (and Prometheus) reach the server, and nothing reach the worker', () => {
    const { manifests } = template([HOSPITAL_VALUES]);
    const server = find(manifests, 'NetworkPolicy', '-server').spec as {
      policyTypes: string[];
      ingress: Array<{ from: Array<{ namespaceSelector: unknown; podSelector: unknown }> }>;
    };
    expect(server.policyTypes).toEqual(['Ingress']);
    expect(server.ingress).toHaveLength(1);
    expect(server.ingress[0]!.from[0]).toEqual({
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
    });
    expect(find(manifests, 'NetworkPolicy', '-worker').spec).toMatchObject({ policyTypes: ['Ingress'], ingress: [] });
    const ingress = find(manifests, 'Ingress', 'cdss').spec as { rules: Array<{ host: string }> };
    expect(ingress.rules[0]!.host).toBe('cdss.hospital.example');
  });

  it('uses an existing Secret when named, rendering none of its own', () => {
    const set = [
      'secrets.existingSecret=hospital-cdss',
      'secrets.webhookSecret=',
      'secrets.amqpUrl=',
      'secrets.mysqlUrl=',
    ];
    const { manifests, yaml, error } = template([HOSPITAL_VALUES], set);
    expect(error).toBe('');
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    expect(yaml).toContain('name: hospital-cdss');
    expect(kubeconform(yaml).status).toBe(0);
  });

  it('scales the workers on RabbitMQ queue depth with KEDA when asked', () => {
    const { manifests, yaml } = template([HOSPITAL_VALUES], ['worker.keda.enabled=true']);
    const scaled = find(manifests, 'ScaledObject', '-worker').spec as {
      scaleTargetRef: { name: string };
      triggers: Array<{ type: string; metadata: Record<string, string> }>;
    };
    expect(scaled.scaleTargetRef.name).toMatch(/-worker$/);
    expect(scaled.triggers[0]).toMatchObject({
      type: 'rabbitmq',
      metadata: { queueName: 'cdss.ai.work.q', mode: 'QueueLength' },
    });
    expect(find(manifests, 'Deployment', '-worker').spec!['replicas']).toBeUndefined();
    // KEDA's kinds are CRDs without a schema in the Kubernetes API; everything else is still validated.
    const result = kubeconform(yaml, ['ScaledObject', 'TriggerAuthentication']);
    expect(result.status, result.output).toBe(0);
  });
});
