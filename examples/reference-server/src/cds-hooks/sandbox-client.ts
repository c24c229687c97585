/**
 * Sandbox only: a demo CDS Client, so that a CDS Hooks call can be tried on a fresh `npm start` with the service's
 * real caller authentication. Its key (RS384, made at the first start, kept in the data folder with mode 0600) is
 * trusted like any allow-listed EHR, but only where the sandbox's demo-token routes exist (a loopback listen address,
 * or `CDSS_SANDBOX_EXPOSE=true`), and `POST /api/sandbox/cds-hooks/patient-view` prepares a complete call as an
 * EHR would send it: the service URL, the client's signed JWT for that URL, and the request with its prefetch
 * (the patient and their problem list, read from OpenEMR's FHIR API).
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import type { FhirResource } from 'fhir/r4.js';
import { ApiError } from '../http/errors.js';
import { defineRoute, type AnyRoute } from '../http/route.js';
import { loadServerKeys } from '../smart/server-keys.js';
import type { TrustedClient } from './caller-auth.js';
import { CDS_SERVICE_IDS } from './services.js';

/** The `iss` of the sandbox's demo CDS Client. */
export const SANDBOX_CDS_CLIENT_ISS = 'urn:cdss:sandbox:cds-client';

/** The demo CDS Client: its entry on the allow-list, and how it signs. */
export interface SandboxCdsClient {
  trusted: TrustedClient;
  /**
   * Signs the JWT of one call, as CDS Hooks 2.0 asks (`iss`, `aud` = the URL called, `exp` in 5 minutes, `iat`,
   * a fresh `jti`).
   * @param audience - the CDS Service URL the JWT is for
   */
  sign(audience: string): Promise<string>;
}

/**
 * The demo CDS Client, its key made at the first start.
 * @param file - its private JWKS (in the sandbox's data folder)
 */
export async function sandboxCdsClient(file: string): Promise<SandboxCdsClient> {
  const keys = await loadServerKeys(file, true);
  return {
    trusted: {
      iss: SANDBOX_CDS_CLIENT_ISS,
      name: 'Sandbox demo CDS Client',
      jwks: keys.publicJwks as NonNullable<TrustedClient['jwks']>,
    },
    sign: (audience) =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: keys.current.alg, kid: keys.current.kid, typ: 'JWT' })
        .setIssuer(SANDBOX_CDS_CLIENT_ISS)
        .setAudience(audience)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(keys.current.privateKey),
  };
}

/** What the example route reads: the EMR's FHIR API and the patients the CDSS has analysed. */
export interface SandboxCdsCallDeps {
  client: SandboxCdsClient;
  /** The server's public base URL, when configured (`CDSS_PUBLIC_URL`); else the URL the request came to. */
  publicUrl?: string | undefined;
  /** OpenEMR's FHIR base (the call's `fhirServer`). */
  fhirServer: string;
  /**
   * The prefetch an EHR would send (`patient`, `conditions`), read from OpenEMR's FHIR API with the server's
   * backend-services client; without it the call carries no prefetch.
   */
  prefetch?: ((patientId: string) => Promise<Record<string, FhirResource>>) | undefined;
  /** The patient of the newest analysis, when no patient is named. */
  latestAnalysedPatient(): Promise<string | undefined>;
}

const preparedCallSchema = z.object({
  url: z.string(),
  authorization: z.string(),
  request: z.looseObject({ hook: z.literal('patient-view'), hookInstance: z.string() }),
});

/**
 * `POST /api/sandbox/cds-hooks/patient-view`: a ready `patient-view` call of the tumour-status service.
 * @param deps - the demo client and where the prefetch comes from
 */
export function sandboxCdsRoutes(deps: SandboxCdsCallDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/api/sandbox/cds-hooks/patient-view',
      operationId: 'prepareDemoCdsCall',
      summary: 'Sandbox: a signed patient-view call of the demo CDS Client, ready to send to the CDS service',
      tags: ['sandbox'],
      access: 'public',
      body: z.strictObject({ patientId: z.uuid().optional() }),
      response: {
        status: 200,
        description: 'The URL, Authorization header and request body',
        schema: preparedCallSchema,
      },
      errors: [400],
      handler: async ({ body, req }) => {
        const patientId = body.patientId ?? (await deps.latestAnalysedPatient());
        if (!patientId) throw new ApiError(400, 'invalid', 'No analysis yet: name a patientId');
        const base = (deps.publicUrl ?? `${req.protocol}://${req.get('host') ?? '127.0.0.1'}`).replace(/\/+$/, '');
        const url = `${base}/cds-services/${CDS_SERVICE_IDS.tumourStatus}`;
        // What cannot be read is left out, as an EHR would: the service then fetches it or answers 412.
        const prefetch = (await deps.prefetch?.(patientId).catch(() => undefined)) ?? {};
        return {
          body: {
            url,
            authorization: `Bearer ${await deps.client.sign(url)}`,
            request: {
              hook: 'patient-view' as const,
              hookInstance: randomUUID(),
              fhirServer: deps.fhirServer,
              context: { userId: 'Practitioner/sandbox-demo', patientId },
              prefetch,
            },
          },
        };
      },
    }),
  ];
}
