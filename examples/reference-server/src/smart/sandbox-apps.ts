/**
 * Sandbox only: the registrations a hospital's OpenEMR administrator makes for the CDSS (docs/guides/ehr-integration.md
 * §§ 1 and 3), made in the embedded OpenEMR emulator at start, through its registration endpoint, then enabled as
 * the administrator would:
 *
 * - the dashboard as a public SMART app (redirect to `/smart/callback`, launch at `/smart/launch`), so that an EHR
 *   launch from the emulator's patient chart, or a standalone launch, works on a fresh `npm start`;
 * - the server as a SMART Backend Services client (its RS384 public keys registered inline, system scopes turned on),
 *   so that it reads OpenEMR's FHIR API with system tokens.
 *
 * The client ids are kept in the data folder and reused while they still fit (same redirect URIs, same keys).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { OpenEmrOAuth } from '@cdss/openemr-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ServerKeys } from './server-keys.js';

/** What the administrator does in OpenEMR's UI (the emulator's engine has it as methods). */
export interface EmulatorAdministration {
  enableClient(clientId: string): boolean;
  setGlobal(name: string, value: string): void;
}

/** Options of {@link registerSandboxApps}. */
export interface SandboxAppsOptions {
  /** The emulator's base URL. */
  openemrUrl: string;
  site: string;
  admin: EmulatorAdministration;
  /** Where the client ids are kept. */
  file: string;
  /** The dashboard's origins (the first is its launch URL's); none = no SMART app. */
  dashboardOrigins: readonly string[];
  /** Scopes the dashboard may ask for. */
  dashboardScope: string;
  /** The server's keys (their RS384 public halves are registered) and its system scopes; no keys = no client. */
  backend?: { keys: ServerKeys; scope: string } | undefined;
  logger: Logger;
}

const storedSchema = z.object({
  smart: z.object({ clientId: z.string(), redirectUris: z.array(z.string()) }).optional(),
  backend: z.object({ clientId: z.string(), kids: z.array(z.string()), scope: z.string() }).optional(),
});
type Stored = z.infer<typeof storedSchema>;

const same = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((value, index) => value === b[index]);

/**
 * Registers (or finds again) the dashboard and the server in the emulator.
 * @param options - the emulator, its administration, what to register
 * @returns the client ids registered (each absent when not asked for)
 */
export async function registerSandboxApps(
  options: SandboxAppsOptions,
): Promise<{ smartClientId?: string; backendClientId?: string }> {
  let stored: Stored = {};
  try {
    stored = storedSchema.parse(JSON.parse(await readFile(options.file, 'utf8')));
  } catch {
    // First start, or an unreadable file: register again.
  }
  const register = (body: Parameters<OpenEmrOAuth['registerClient']>[0]) =>
    new OpenEmrOAuth({ baseUrl: options.openemrUrl, site: options.site, logger: options.logger }).registerClient(body);
  const result: { smartClientId?: string; backendClientId?: string } = {};

  const [launchOrigin] = options.dashboardOrigins;
  if (launchOrigin) {
    const redirectUris = options.dashboardOrigins.map((origin) => `${origin}/smart/callback`);
    let clientId = stored.smart && same(stored.smart.redirectUris, redirectUris) ? stored.smart.clientId : undefined;
    // Enabling is what the administrator does after registering (a public app asking for `launch` starts disabled).
    if (!clientId || !options.admin.enableClient(clientId)) {
      // No token_endpoint_auth_method: OpenEMR 8.0.0 refuses "none" (recorded file 68); omitted means public.
      clientId = (
        await register({
          application_type: 'public',
          client_name: 'CDSS brain tumour dashboard (sandbox)',
          redirect_uris: redirectUris,
          initiate_login_uri: `${launchOrigin}/smart/launch`,
          scope: options.dashboardScope,
          dsi_type: 'predictive',
        })
      ).client_id;
      options.admin.enableClient(clientId);
      stored.smart = { clientId, redirectUris };
    }
    result.smartClientId = clientId;
  }

  const rs384 = options.backend?.keys.all.filter((key) => key.alg === 'RS384') ?? [];
  if (options.backend && rs384.length > 0) {
    const kids = rs384.map((key) => key.kid);
    const { scope } = options.backend;
    let clientId =
      stored.backend && same(stored.backend.kids, kids) && stored.backend.scope === scope
        ? stored.backend.clientId
        : undefined;
    // "Enable OpenEMR FHIR System Scopes" (Admin → Config → Connectors): registration with system/ needs it (file 89).
    options.admin.setGlobal('rest_system_scopes_api', '1');
    if (!clientId || !options.admin.enableClient(clientId)) {
      clientId = (
        await register({
          application_type: 'private',
          client_name: 'CDSS server (sandbox)',
          redirect_uris: [`${options.openemrUrl}/unused`],
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: rs384.map((key) => key.publicJwk as Record<string, unknown>) },
          scope,
        })
      ).client_id;
      options.admin.enableClient(clientId);
      stored.backend = { clientId, kids, scope };
    }
    result.backendClientId = clientId;
  }
  await writeFile(options.file, JSON.stringify(stored, null, 2), { mode: 0o600 });
  return result;
}

/**
 * Where the dashboard is reached, for its redirect URIs: `CDSS_PUBLIC_URL`, or on a loopback listen address with a
 * fixed port both `127.0.0.1` and `localhost` (browsers treat them as different origins).
 * @param publicUrl - `CDSS_PUBLIC_URL`
 * @param host - `HOST`, a loopback address
 * @param port - `PORT`; 0 (any free port) leaves the URL unknown before listening
 */
export function dashboardOrigins(publicUrl: string | undefined, host: string, port: number): string[] {
  if (publicUrl) return [publicUrl.replace(/\/+$/, '')];
  if (port === 0) return [];
  const address = host.replace(/^\[(.*)\]$/, '$1');
  if (address === '::1') return [`http://[::1]:${port}`, `http://localhost:${port}`];
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
}
