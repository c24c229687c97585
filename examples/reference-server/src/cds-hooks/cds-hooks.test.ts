/**
 * CDS Hooks conformance over HTTP: discovery, each hook with and without prefetch (fetched with fhirAuthorization
 * from the client's FHIR server), 412, the caller JWT (bad signature, replayed jti, wrong aud, expired, untrusted
 * issuer), invalid requests, and feedback stored and audited. The EHR's JWKS is served over HTTP as a real EHR's is.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../test-support.js';
import { createLogger } from '../logger.js';
import { createCdsCallerVerifier } from './caller-auth.js';
import { cdsHooksRouter } from './router.js';
import { discoveryResponseSchema, hookResponseSchema, type HookResponse } from './schemas.js';
import { cdsServices, CDS_SERVICE_IDS, type TumourStatus } from './services.js';
import { createMemoryCdsStore } from './store.js';
import { listenOnFreePort } from '@cdss/core/testing';

const PATIENT_ID = 'a365f038-8069-4a91-a2be-d710cbdf93d0';
const patient = {
  resourceType: 'Patient',
  id: PATIENT_ID,
  name: [{ use: 'official', family: 'Müller-Łukasz', given: ['Zoë'] }],
  birthDate: '1970-03-04',
};
const glioma = {
  resourceType: 'Condition',
  id: 'c1',
  clinicalStatus: { coding: [{ code: 'active' }] },
  code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C71.9' }], text: 'Glioblastoma' },
  subject: { reference: `Patient/${PATIENT_ID}` },
};
const conditions = (...resources: unknown[]) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  entry: resources.map((resource) => ({ resource })),
});
const mriOrder = {
  resourceType: 'ServiceRequest',
  id: 'mri-1',
  status: 'draft',
  intent: 'order',
  code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '70551', display: 'MRI brain w/o contrast' }] },
  subject: { reference: `Patient/${PATIENT_ID}` },
};
const labOrder = {
  resourceType: 'ServiceRequest',
  id: 'lab-1',
  status: 'draft',
  intent: 'order',
  code: { text: 'Complete blood count' },
  subject: { reference: `Patient/${PATIENT_ID}` },
};

function statusOf(kind: 'none' | 'approved-progression' | 'pending'): TumourStatus {
  if (kind === 'none') return { patientId: PATIENT_ID };
  return {
    patientId: PATIENT_ID,
    latest: {
      id: '8d3f2a1c-0000-4000-8000-000000000001',
      status: 'succeeded',
      studyUid: '2.25.1',
      studyDate: '2026-11-02',
      requestedAt: '2026-11-02T10:00:00.000Z',
      review:
        kind === 'pending'
          ? { status: 'pending' }
          : {
              status: 'approved',
              reviewer: 'demo-radiologist',
              reviewerName: 'Rita Radiologist',
              reviewedAt: '2026-11-03T08:00:00.000Z',
            },
      volumesMl: { enhancingTumor: 12.345, tumorCore: 20.5, wholeTumor: 41.25 },
      model: { id: 'cdss-brats-demo', version: '0.1.0' },
    },
    assessment: { category: 'progression', changePercent: 32.5, date: '2026-11-02' },
  };
}

describe('CDS Hooks service', () => {
  let harness: Harness;
  let ehr: Server;
  let fhir: Server;
  let ehrUrl: string;
  let fhirUrl: string;
  const fhirAuthHeaders: string[] = [];
  let status: TumourStatus = statusOf('approved-progression');
  const store = createMemoryCdsStore();
  let sign: (aud: string, overrides?: { jti?: string; exp?: string; key?: CryptoKey; iss?: string }) => Promise<string>;

  const listen = async (server: Server): Promise<string> => {
    await listenOnFreePort(server);
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'ehr-2026', alg: 'ES384', use: 'sig' };
    ehr = createServer((_req, res) =>
      res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })),
    );
    ehrUrl = await listen(ehr);
    fhir = createServer((req, res) => {
      fhirAuthHeaders.push(req.headers.authorization ?? '');
      res.setHeader('content-type', 'application/fhir+json');
      if (req.url === `/fhir/Patient/${PATIENT_ID}`) return res.end(JSON.stringify(patient));
      if (req.url?.startsWith('/fhir/Condition?')) return res.end(JSON.stringify(conditions(glioma)));
      res.statusCode = 404;
      res.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [] }));
    });
    fhirUrl = `${await listen(fhir)}/fhir`;
    sign = (aud, overrides = {}) =>
      new SignJWT({ jti: overrides.jti ?? crypto.randomUUID(), tenant: 'hospital-1' })
        .setProtectedHeader({ alg: 'ES384', typ: 'JWT', kid: 'ehr-2026', jku: `${ehrUrl}/jwks` })
        .setIssuer(overrides.iss ?? 'https://ehr.hospital.test')
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime(overrides.exp ?? '2m')
        .sign(overrides.key ?? privateKey);
    harness = await startHarness(
      () => [],
      {},
      undefined,
      ({ auditor }) => [
        cdsHooksRouter({
          services: cdsServices({ status: { status: async () => status }, store }),
          verifier: createCdsCallerVerifier({
            clients: [{ iss: 'https://ehr.hospital.test', jwksUrls: [`${ehrUrl}/jwks`], name: 'Hospital EHR' }],
            replay: store,
          }),
          store,
          auditor,
          logger: createLogger('silent'),
        }),
      ],
    );
  });

  afterAll(async () => {
    await harness?.close();
    ehr?.close();
    fhir?.close();
  });

  const url = (path: string) => `${harness.baseUrl}/cds-services${path}`;
  const call = async (id: string, body: unknown, token?: string) => {
    const response = await fetch(url(`/${id}`), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token ?? (await sign(url(`/${id}`)))}`,
      },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as HookResponse & { issue?: unknown[] } };
  };
  const patientView = (extra: Record<string, unknown> = {}) => ({
    hook: 'patient-view',
    hookInstance: crypto.randomUUID(),
    context: { userId: 'Practitioner/7', patientId: PATIENT_ID },
    prefetch: { patient, conditions: conditions(glioma) },
    ...extra,
  });
  const orderCall = (hook: 'order-select' | 'order-sign', orders: unknown[], selections?: string[]) => ({
    hook,
    hookInstance: crypto.randomUUID(),
    context: {
      userId: 'Practitioner/7',
      patientId: PATIENT_ID,
      ...(selections ? { selections } : {}),
      draftOrders: { resourceType: 'Bundle', type: 'collection', entry: orders.map((resource) => ({ resource })) },
    },
    prefetch: { patient, conditions: conditions() },
  });

  describe('discovery', () => {
    it('lists the three services with their prefetch templates', async () => {
      const response = await fetch(url(''), { headers: { authorization: `Bearer ${await sign(url(''))}` } });
      expect(response.status).toBe(200);
      const body = discoveryResponseSchema.parse(await response.json());
      expect(body.services.map((s) => [s.hook, s.id])).toEqual([
        ['patient-view', CDS_SERVICE_IDS.tumourStatus],
        ['order-select', CDS_SERVICE_IDS.mriProtocolSelect],
        ['order-sign', CDS_SERVICE_IDS.mriProtocolSign],
      ]);
      expect(body.services[0]?.prefetch).toEqual({
        patient: 'Patient/{{context.patientId}}',
        conditions: 'Condition?patient={{context.patientId}}&category=problem-list-item',
        imagingStudy: 'ImagingStudy?patient={{context.patientId}}&_sort=-started&_count=1',
      });
    });

    it('needs the JWT too', async () => {
      expect((await fetch(url(''))).status).toBe(401);
    });
  });

  describe('patient-view', () => {
    it('answers from prefetch: response category, scan date, review, volumes, whose, and a SMART link', async () => {
      status = statusOf('approved-progression');
      const { status: code, body } = await call(CDS_SERVICE_IDS.tumourStatus, patientView());
      expect(code).toBe(200);
      expect(hookResponseSchema.safeParse(body).success).toBe(true);
      const [card] = body.cards;
      expect(card).toMatchObject({
        summary: 'Brain tumour: progressive disease (2026-11-02)',
        indicator: 'critical',
        source: { label: 'CDSS brain-tumour MRI', url: harness.baseUrl },
      });
      expect(card?.detail).toContain('**Patient:** Müller-Łukasz, Zoë (born 1970-03-04)');
      expect(card?.detail).toContain('| Enhancing tumour | 12.35 mL |');
      expect(card?.detail).toContain('+32.5 % enhancing volume from baseline (MRI 2026-11-02)');
      expect(card?.detail).toContain('approved by Rita Radiologist on 2026-11-03');
      expect(card?.detail).toContain('**not for clinical use**');
      expect(card?.links).toEqual([
        {
          label: 'Open the analysis in the CDSS dashboard',
          url: `${harness.baseUrl}/smart/launch`,
          type: 'smart',
          appContext: JSON.stringify({ patientId: PATIENT_ID, analysisId: statusOf('pending').latest?.id }),
        },
      ]);
    });

    it('flags a result that awaits review', async () => {
      status = statusOf('pending');
      const { body } = await call(CDS_SERVICE_IDS.tumourStatus, patientView());
      expect(body.cards[0]).toMatchObject({
        summary: 'Brain tumour: progressive disease (2026-11-02) — awaiting review',
        indicator: 'warning',
      });
      expect(body.cards[0]?.detail).toContain('awaiting radiologist review (preliminary)');
    });

    it('flags a result with plausibility flags even once approved', async () => {
      const approved = statusOf('approved-progression');
      status = {
        ...approved,
        latest: { ...approved.latest!, flags: ['Whole tumour volume changed by 400 % in 7 days'] },
        assessment: { category: 'stable', changePercent: 3, date: '2026-11-02' },
      };
      const { body } = await call(CDS_SERVICE_IDS.tumourStatus, patientView());
      expect(body.cards[0]).toMatchObject({
        summary: 'Brain tumour: stable disease (2026-11-02) — flagged',
        indicator: 'warning',
      });
      expect(body.cards[0]?.detail).toContain('**Flags:** ⚠ Whole tumour volume changed by 400 % in 7 days');
    });

    it('answers no cards for a patient with no analysis and no brain tumour', async () => {
      status = statusOf('none');
      const { status: code, body } = await call(
        CDS_SERVICE_IDS.tumourStatus,
        patientView({ prefetch: { patient, conditions: null } }),
      );
      expect([code, body]).toEqual([200, { cards: [] }]);
    });

    it('fetches missing prefetch from the client’s FHIR server with the given token', async () => {
      status = statusOf('none');
      fhirAuthHeaders.length = 0;
      const { status: code, body } = await call(
        CDS_SERVICE_IDS.tumourStatus,
        patientView({
          prefetch: undefined,
          fhirServer: fhirUrl,
          fhirAuthorization: {
            access_token: 'opaque-token-1',
            token_type: 'Bearer',
            expires_in: 300,
            scope: 'user/Patient.rs user/Condition.rs',
            subject: 'cdss',
          },
        }),
      );
      expect(code).toBe(200);
      expect(body.cards[0]?.summary).toBe('Brain tumour on the problem list: no AI volumetric MRI analysis yet');
      expect(body.cards[0]?.detail).toContain('Müller-Łukasz, Zoë');
      expect(fhirAuthHeaders).toHaveLength(3);
      expect(new Set(fhirAuthHeaders)).toEqual(new Set(['Bearer opaque-token-1']));
    });

    it('answers 412 when a required prefetch is missing and there is no token to fetch it', async () => {
      const { status: code, body } = await call(CDS_SERVICE_IDS.tumourStatus, patientView({ prefetch: { patient } }));
      expect(code).toBe(412);
      expect(JSON.stringify(body)).toContain('Prefetch \\"conditions\\"');
    });

    it('audits the call: the EHR user through the client, the patient, the service', async () => {
      await call(CDS_SERVICE_IDS.tumourStatus, patientView());
      expect(harness.audit.records.at(-1)).toMatchObject({
        userId: 'https://ehr.hospital.test#Practitioner/7',
        userName: 'Practitioner/7 via CDS client Hospital EHR',
        patientId: PATIENT_ID,
        action: 'read',
        resource: `CdsService/${CDS_SERVICE_IDS.tumourStatus}`,
        outcome: 'success',
      });
    });
  });

  describe('order-select and order-sign', () => {
    it('suggests the tumour protocol and an automatic analysis for a selected brain MRI order', async () => {
      const { status: code, body } = await call(
        CDS_SERVICE_IDS.mriProtocolSelect,
        orderCall('order-select', [mriOrder, labOrder], ['ServiceRequest/mri-1']),
      );
      expect(code).toBe(200);
      expect(hookResponseSchema.safeParse(body).success).toBe(true);
      expect(body.cards).toHaveLength(1);
      const [card] = body.cards;
      expect(card?.selectionBehavior).toBe('any');
      expect(card?.suggestions?.map((s) => s.label)).toEqual([
        'Use the brain tumour MRI protocol (T1, T1c, T2, FLAIR)',
        'Analyse the study automatically when it arrives',
      ]);
      const [protocol, analysis] = card!.suggestions!.map((s) => s.actions![0]!);
      expect(protocol).toMatchObject({ type: 'update', resource: { resourceType: 'ServiceRequest', id: 'mri-1' } });
      const details = (protocol!.resource as unknown as { orderDetail: Array<{ coding: Array<{ code: string }> }> })
        .orderDetail;
      expect(details.map((d) => d.coding[0]?.code)).toEqual([
        'brain-tumour-mri-protocol',
        'seq-t1',
        'seq-t1c',
        'seq-t2',
        'seq-flair',
      ]);
      expect(analysis).toMatchObject({
        type: 'create',
        resource: { resourceType: 'ServiceRequest', basedOn: [{ reference: 'ServiceRequest/mri-1' }] },
      });
      expect(card?.overrideReasons?.length).toBeGreaterThan(0);
    });

    it('says nothing for orders that are not brain MRIs, or not among the selections', async () => {
      expect(
        (await call(CDS_SERVICE_IDS.mriProtocolSelect, orderCall('order-select', [labOrder], ['ServiceRequest/lab-1'])))
          .body,
      ).toEqual({ cards: [] });
      expect(
        (
          await call(
            CDS_SERVICE_IDS.mriProtocolSelect,
            orderCall('order-select', [mriOrder, labOrder], ['ServiceRequest/lab-1']),
          )
        ).body,
      ).toEqual({ cards: [] });
    });

    it('answers order-sign on every draft order', async () => {
      const { body } = await call(CDS_SERVICE_IDS.mriProtocolSign, orderCall('order-sign', [mriOrder]));
      expect(body.cards[0]?.summary).toBe('Brain MRI: order the four-sequence tumour protocol (T1, T1c, T2, FLAIR)');
    });

    it('fetches their prefetch when the EHR sent none, and answers 412 when it cannot', async () => {
      const fhirAuthorization = {
        access_token: 'opaque-token-2',
        token_type: 'Bearer',
        expires_in: 300,
        scope: 'user/Patient.rs user/Condition.rs',
        subject: 'cdss',
      };
      for (const [id, hook] of [
        [CDS_SERVICE_IDS.mriProtocolSelect, 'order-select'],
        [CDS_SERVICE_IDS.mriProtocolSign, 'order-sign'],
      ] as const) {
        fhirAuthHeaders.length = 0;
        const withoutPrefetch = { ...orderCall(hook, [mriOrder], ['ServiceRequest/mri-1']), prefetch: undefined };
        const fetched = await call(id, { ...withoutPrefetch, fhirServer: fhirUrl, fhirAuthorization });
        expect(fetched.status, hook).toBe(200);
        expect(fetched.body.cards[0]?.summary, hook).toContain('Brain MRI');
        expect(fhirAuthHeaders.length, hook).toBeGreaterThan(0);
        expect(new Set(fhirAuthHeaders), hook).toEqual(new Set(['Bearer opaque-token-2']));
        expect((await call(id, withoutPrefetch)).status, hook).toBe(412);
      }
    });
  });

  describe('feedback', () => {
    it('stores and audits accepted suggestions; an accepted automatic analysis is recorded for the watcher', async () => {
      const { body } = await call(
        CDS_SERVICE_IDS.mriProtocolSelect,
        orderCall('order-select', [mriOrder], ['ServiceRequest/mri-1']),
      );
      const card = body.cards[0]!;
      const autoAnalysis = card.suggestions![1]!.uuid!;
      const feedbackUrl = url(`/${CDS_SERVICE_IDS.mriProtocolSelect}/feedback`);
      const response = await fetch(feedbackUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign(feedbackUrl)}` },
        body: JSON.stringify({
          feedback: [
            {
              card: card.uuid,
              outcome: 'accepted',
              acceptedSuggestions: [{ id: autoAnalysis }],
              outcomeTimestamp: '2026-12-06T10:05:31Z',
            },
          ],
        }),
      });
      expect(response.status).toBe(200);
      expect(await store.feedbackOf(card.uuid!)).toMatchObject([
        { serviceId: CDS_SERVICE_IDS.mriProtocolSelect, caller: 'https://ehr.hospital.test', patientId: PATIENT_ID },
      ]);
      expect(await store.autoAnalysisRequests(PATIENT_ID, 0)).toMatchObject([
        { patientId: PATIENT_ID, cardUuid: card.uuid, orderRef: 'ServiceRequest/mri-1' },
      ]);
      expect(harness.audit.records.at(-1)).toMatchObject({
        action: 'create',
        patientId: PATIENT_ID,
        resource: `CdsFeedback/${CDS_SERVICE_IDS.mriProtocolSelect}/${card.uuid}`,
      });
      // Once accepted, the next card for the same order no longer offers it.
      const again = await call(
        CDS_SERVICE_IDS.mriProtocolSelect,
        orderCall('order-select', [mriOrder], ['ServiceRequest/mri-1']),
      );
      expect(again.body.cards[0]?.suggestions?.map((s) => s.label)).toEqual([
        'Use the brain tumour MRI protocol (T1, T1c, T2, FLAIR)',
      ]);
    });

    it('stores an override with its reason and comment (signed for the service URL)', async () => {
      const serviceUrl = url(`/${CDS_SERVICE_IDS.tumourStatus}`);
      const item = {
        card: 'f6b95768-b1c8-40dc-8385-bf3504b82ffb',
        outcome: 'overridden',
        overrideReason: {
          reason: { system: 'urn:cdss:cds-hooks:override-reason', code: 'no-tumour-indication' },
          userComment: 'Follow-up is at another hospital',
        },
        outcomeTimestamp: '2026-12-06T10:06:00Z',
      };
      const response = await fetch(`${serviceUrl}/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign(serviceUrl)}` },
        body: JSON.stringify({ feedback: [item] }),
      });
      expect(response.status).toBe(200);
      expect((await store.feedbackOf(item.card))[0]?.item).toEqual(item);
    });

    it('refuses malformed feedback and changes nothing', async () => {
      const feedbackUrl = url(`/${CDS_SERVICE_IDS.tumourStatus}/feedback`);
      const response = await fetch(feedbackUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await sign(feedbackUrl)}` },
        body: JSON.stringify({ feedback: [{ card: 'c-bad', outcome: 'accepted', outcomeTimestamp: 'yesterday' }] }),
      });
      expect(response.status).toBe(400);
      expect(await store.feedbackOf('c-bad')).toEqual([]);
    });
  });

  describe('caller authentication and bad requests', () => {
    const id = CDS_SERVICE_IDS.tumourStatus;
    const refused = async (token: string) => {
      const { status: code, body } = await call(id, patientView(), token);
      return [code, JSON.stringify(body)];
    };

    it('refuses a bad signature, a wrong aud, an expired JWT, an untrusted issuer and a replayed jti', async () => {
      const stranger = await generateKeyPair('ES384');
      expect(await refused(await sign(url(`/${id}`), { key: stranger.privateKey }))).toEqual([
        401,
        expect.stringContaining('The JWT signature is invalid'),
      ]);
      expect(await refused(await sign(url(`/${CDS_SERVICE_IDS.mriProtocolSelect}`)))).toEqual([
        401,
        expect.stringContaining('aud is not the URL'),
      ]);
      expect(await refused(await sign(url(`/${id}`), { exp: '-1m' }))).toEqual([
        401,
        expect.stringContaining('expired'),
      ]);
      expect(await refused(await sign(url(`/${id}`), { iss: 'https://evil.test' }))).toEqual([
        401,
        expect.stringContaining('not a trusted CDS Client'),
      ]);
      const token = await sign(url(`/${id}`));
      expect((await call(id, patientView(), token)).status).toBe(200);
      expect(await refused(token)).toEqual([401, expect.stringContaining('jti replay')]);
    });

    it('answers 404 for an unknown service and 400 for an invalid request or the wrong hook', async () => {
      expect((await call('no-such-service', patientView())).status).toBe(404);
      expect((await call(id, { ...patientView(), hookInstance: undefined })).status).toBe(400);
      expect((await call(id, { ...patientView(), hook: 'order-sign' })).status).toBe(400);
      expect((await call(id, patientView({ context: { userId: 'Device/1', patientId: PATIENT_ID } }))).status).toBe(
        400,
      );
    });
  });
});
