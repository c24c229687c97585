/**
 * SMART App Launch 2.2 with the maintained `fhirclient` library: `/smart/launch` starts an EHR launch (OpenEMR opens
 * it with `launch` and `iss`) or, without them, a standalone launch against the configured EHR; `/smart/callback`
 * finishes the authorization (PKCE, state checked by fhirclient), trades the id_token for a CDSS session bound to the
 * EHR user, and opens the patient (or the analysis a CDS Hooks card named in `appContext`).
 * @see https://hl7.org/fhir/smart-app-launch/STU2.2/app-launch.html
 */
import FHIR from 'fhirclient';
import { useEffect, useState } from 'react';
import { navigate } from '../router';
import { baseUrl, useSession } from '../session';
import { ErrorNote, Loading } from '../ui';
import { landingPath } from './landing';

/** The dashboard's SMART settings, from the server (`GET /api/smart/config`). */
interface SmartConfig {
  clientId: string;
  fhirBaseUrl: string;
  ehrScope: string;
  standaloneScope: string;
  redirectPath: string;
}

async function smartConfig(): Promise<SmartConfig> {
  const response = await fetch(`${baseUrl}/api/smart/config`);
  if (!response.ok) throw new Error('SMART launch is not configured on this server (CDSS_SMART_CLIENT_ID).');
  return (await response.json()) as SmartConfig;
}

/** `/smart/launch`: hands over to the EHR's authorization server. */
export function SmartLaunch() {
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    const iss = params.get('iss');
    const launch = params.get('launch');
    smartConfig()
      .then((config) =>
        FHIR.oauth2.authorize({
          clientId: config.clientId,
          redirectUri: `${baseUrl}${config.redirectPath}`,
          // An EHR launch names its FHIR server and launch context; a standalone one uses the configured EHR.
          ...(iss && launch
            ? { iss, launch, scope: config.ehrScope }
            : { iss: config.fhirBaseUrl, scope: config.standaloneScope }),
          pkceMode: 'required',
        }),
      )
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, []);
  return (
    <main id="main">
      <h1>Connecting to the EHR…</h1>
      {error ? <ErrorNote message={error} /> : <Loading what="the EHR's sign-in" />}
    </main>
  );
}

/**
 * The authorization code can be exchanged once: every render of the callback page shares one completion (React's
 * development StrictMode runs effects twice).
 */
let completion: Promise<{ client: Awaited<ReturnType<typeof FHIR.oauth2.ready>>; session: SessionAnswer }> | undefined;

interface SessionAnswer {
  access_token: string;
  expires_in: number;
  user: { id: string; name: string; role: string };
}

async function complete(): Promise<{ client: Awaited<ReturnType<typeof FHIR.oauth2.ready>>; session: SessionAnswer }> {
  const client = await FHIR.oauth2.ready();
  const token = client.state.tokenResponse;
  if (!token?.id_token) throw new Error('The EHR sent no id_token: the app must ask for openid and fhirUser.');
  const response = await fetch(`${baseUrl}/api/smart/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: token.id_token }),
  });
  if (!response.ok) throw new Error(`The CDSS server refused the EHR sign-in (${response.status}).`);
  return { client, session: (await response.json()) as SessionAnswer };
}

/** `/smart/callback`: finishes the launch and opens the dashboard as the EHR user. */
export function SmartCallback() {
  const { signIn } = useSession();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let cancelled = false;
    (async () => {
      completion ??= complete();
      const { client, session } = await completion;
      if (cancelled) return;
      signIn({ token: session.access_token, user: session.user, expiresAt: Date.now() + session.expires_in * 1000 });
      navigate(
        landingPath({
          ...(client.patient.id ? { patient: client.patient.id } : {}),
          ...(client.encounter.id ? { encounter: client.encounter.id } : {}),
          appContext: (client.state.tokenResponse as { appContext?: unknown } | undefined)?.appContext,
        }),
        true,
      );
    })().catch((e: unknown) => {
      if (!cancelled) setError(e instanceof Error ? e.message : String(e));
    });
    return () => {
      cancelled = true;
    };
  }, [signIn]);
  return (
    <main id="main">
      <h1>Signing in from the EHR…</h1>
      {error ? <ErrorNote message={error} /> : <Loading what="the session" />}
    </main>
  );
}
