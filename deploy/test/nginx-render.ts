/**
 * Renders deploy/nginx into a temporary folder the way the official nginx image does at start-up (envsubst of
 * templates/*.template into conf.d/, only for the variables that are defined), with three test-only changes that
 * the deployment leaves to the operator: the upstream list points at the test's server instances, temp paths live
 * in the folder, and one extra address is trusted as a proxy so the Cloudflare real-IP rule can be exercised.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEPLOY_DIR } from './support.js';

/** envsubst restricted to the given variables: `${NAME}` of another name (or nginx's `$var`) is left alone. */
export function substitute(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (whole, name: string) => vars[name] ?? whole);
}

/** The variables the template needs (deploy/compose.yaml sets them for the nginx container). */
export const TEMPLATE_VARIABLES = [
  'NGINX_SERVER_NAME',
  'NGINX_HTTP_LISTEN',
  'NGINX_HTTPS_LISTEN',
  'NGINX_CERT_DIR',
  'NGINX_CACHE_DIR',
  'NGINX_ACCESS_LOG',
  'NGINX_API_RATE',
  'NGINX_API_BURST',
] as const;

/** What the test's nginx needs. */
export interface NginxRenderOptions {
  dir: string;
  httpPort: number;
  httpsPort: number;
  certDir: string;
  upstreams: readonly string[];
  trustedProxy: string;
  /** Per-IP API rate (`limit_req`), default the deployment's `20r/s`; load tests from one address raise it. */
  apiRate?: string;
  /** Burst above the rate, default 40. */
  apiBurst?: number;
}

/**
 * Copies deploy/nginx into `dir`, renders the templates and rewrites the upstream servers.
 * @returns the path of the main configuration file
 */
export function renderNginx(options: NginxRenderOptions): string {
  const { dir } = options;
  const source = join(DEPLOY_DIR, 'nginx');
  cpSync(join(source, 'nginx.conf'), join(dir, 'nginx.conf'));
  cpSync(join(source, 'cdss'), join(dir, 'cdss'), { recursive: true });
  mkdirSync(join(dir, 'conf.d'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  // The image ships mime.types next to nginx.conf; so does Debian's nginx package.
  copyFileSync(
    existsSync('/etc/nginx/mime.types') ? '/etc/nginx/mime.types' : join(source, 'mime.types'),
    join(dir, 'mime.types'),
  );

  const vars: Record<(typeof TEMPLATE_VARIABLES)[number], string> = {
    NGINX_SERVER_NAME: 'localhost',
    NGINX_HTTP_LISTEN: `127.0.0.1:${options.httpPort}`,
    NGINX_HTTPS_LISTEN: `127.0.0.1:${options.httpsPort}`,
    NGINX_CERT_DIR: options.certDir,
    NGINX_CACHE_DIR: join(dir, 'cache'),
    NGINX_ACCESS_LOG: join(dir, 'access.log'),
    NGINX_API_RATE: options.apiRate ?? '20r/s',
    NGINX_API_BURST: String(options.apiBurst ?? 40),
  };
  for (const file of readdirSync(join(source, 'templates'))) {
    if (!file.endsWith('.template')) continue;
    const rendered = substitute(readFileSync(join(source, 'templates', file), 'utf8'), vars);
    const left = rendered.match(/\$\{NGINX_[A-Z0-9_]+\}/g);
    if (left) throw new Error(`${file}: variables left unrendered: ${left.join(', ')}`);
    writeFileSync(join(dir, 'conf.d', file.replace(/\.template$/, '')), rendered);
  }

  // Scaling out = listing the instances: swap the deployment's server lines for the test's instances.
  const upstream = readFileSync(join(source, 'cdss', 'upstream.conf'), 'utf8');
  const serverLine = /^\s*server\s+\S+\s+(max_fails=\S+\s+fail_timeout=\S+);\s*$/m;
  const match = serverLine.exec(upstream);
  if (!match)
    throw new Error('deploy/nginx/cdss/upstream.conf: no `server host:port max_fails=.. fail_timeout=..;` line');
  const lines = options.upstreams.map((addr) => `  server ${addr} ${match[1]};`).join('\n');
  writeFileSync(
    join(dir, 'cdss', 'upstream.conf'),
    upstream
      .split('\n')
      .filter((line) => !/^\s*#?\s*server\s/.test(line))
      .join('\n')
      .replace(/(upstream\s+cdss_api\s*\{)/, `$1\n${lines}`),
  );

  writeFileSync(
    join(dir, 'conf.d', '00-test-local.conf'),
    [
      '# test only: temp files inside the test folder, and one loopback address playing a trusted proxy',
      `client_body_temp_path ${join(dir, 'tmp', 'body')};`,
      `proxy_temp_path ${join(dir, 'tmp', 'proxy')};`,
      `fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};`,
      `uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};`,
      `scgi_temp_path ${join(dir, 'tmp', 'scgi')};`,
      `set_real_ip_from ${options.trustedProxy};`,
      '',
    ].join('\n'),
  );
  return join(dir, 'nginx.conf');
}
