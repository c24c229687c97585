/**
 * The CDS Services: `patient-view` shows the patient's latest tumour status (RANO-style response category, the scan's
 * date, whether the result awaits review or was rejected) with a SMART link into the dashboard; `order-select` and
 * `order-sign` recognise a brain MRI order and suggest the four-sequence tumour protocol and an automatic analysis
 * once the study arrives.
 */
import { randomUUID } from 'node:crypto';
import type { Condition, ImagingStudy, Patient, ServiceRequest } from 'fhir/r4.js';
import type { Assessment } from '../api-schemas.js';
import {
  AUTO_ANALYSIS_CODE,
  hasTumourProtocol,
  isBrainMriOrder,
  isBrainTumourCondition,
  withTumourProtocol,
} from '../domain/brain-tumour.js';
import type { PrefetchTemplate, PrefetchValue } from './prefetch.js';
import { resourcesOf } from './prefetch.js';
import type { Card, CdsService, HookResponse, SupportedHook } from './schemas.js';
import type { CdsStore, Offer } from './store.js';

/** The patient's tumour status as the CDSS knows it (computed from analyses and reviews; cached). */
export interface TumourStatus {
  patientId: string;
  /** The newest analysis of any state. */
  latest?: {
    id: string;
    status: 'queued' | 'accepted' | 'running' | 'succeeded' | 'failed' | 'cancelled';
    studyUid: string;
    /** The scan's date (DICOM StudyDate), when the PACS knows it. */
    studyDate?: string;
    requestedAt: string;
    review?: {
      status: 'pending' | 'approved' | 'rejected';
      reviewer?: string;
      reviewerName?: string;
      reviewedAt?: string;
    };
    volumesMl?: { enhancingTumor: number; tumorCore: number; wholeTumor: number };
    /** Plausibility flags of the result (messages), when it has any. */
    flags?: string[];
    failure?: string;
    model: { id: string; version: string };
  };
  /** The longitudinal response over the reviewed (not rejected) results. */
  assessment?: {
    category: Assessment['status'];
    changePercent?: number;
    /** Scan date of the result the category describes. */
    date?: string;
  };
}

/** Where the services read the status from. */
export interface TumourStatusSource {
  status(patientId: string): Promise<TumourStatus>;
}

/** What the services need. */
export interface CdsServicesDeps {
  status: TumourStatusSource;
  store: CdsStore;
  now?: () => Date;
  uuid?: () => string;
}

/** A CDS Service of this server: its discovery entry, its templates, and how it answers. */
export interface CdsServiceDefinition {
  definition: CdsService & { hook: SupportedHook };
  templates: Readonly<Record<string, PrefetchTemplate>>;
  answer(call: ServiceCall): Promise<HookResponse>;
}

/** One validated call. */
export interface ServiceCall {
  /** The server's public base URL (links and the SMART launch URL). */
  baseUrl: string;
  hookInstance: string;
  context: { userId: string; patientId: string; selections?: string[]; draftOrders?: { entry?: unknown[] } };
  prefetch: Record<string, PrefetchValue>;
}

/** Ids of this server's CDS Services. */
export const CDS_SERVICE_IDS = {
  tumourStatus: 'cdss-tumour-status',
  mriProtocolSelect: 'cdss-brain-mri-protocol',
  mriProtocolSign: 'cdss-brain-mri-protocol-sign',
} as const;

const PATIENT_TEMPLATE: PrefetchTemplate = { query: 'Patient/{{context.patientId}}', required: true };
const CONDITIONS_TEMPLATE: PrefetchTemplate = {
  query: 'Condition?patient={{context.patientId}}&category=problem-list-item',
  required: true,
};
const IMAGING_TEMPLATE: PrefetchTemplate = {
  query: 'ImagingStudy?patient={{context.patientId}}&_sort=-started&_count=1',
  required: false,
};

const CATEGORY_TEXT: Record<Assessment['status'], string> = {
  'complete-response': 'complete response',
  'partial-response': 'partial response',
  stable: 'stable disease',
  progression: 'progressive disease',
  'not-evaluable': 'not evaluable yet (one timepoint)',
};

/** Override reasons offered on order cards. */
const OVERRIDE_SYSTEM = 'urn:cdss:cds-hooks:override-reason';
const ORDER_OVERRIDE_REASONS = [
  { system: OVERRIDE_SYSTEM, code: 'no-tumour-indication', display: 'No brain tumour indication for this MRI' },
  { system: OVERRIDE_SYSTEM, code: 'protocol-by-radiology', display: 'Protocol is chosen by radiology' },
  { system: OVERRIDE_SYSTEM, code: 'contrast-contraindicated', display: 'Contrast is contraindicated' },
];

const mL = (value: number): string => `${value.toFixed(2)} mL`;

function whose(patient: Patient | undefined, patientId: string): string {
  const name = patient?.name?.find((n) => n.use === 'official') ?? patient?.name?.[0];
  const display = name ? [name.family, name.given?.join(' ')].filter(Boolean).join(', ') : undefined;
  const born = patient?.birthDate ? ` (born ${patient.birthDate})` : '';
  return display ? `${display}${born}` : `patient ${patientId}`;
}

/**
 * The services.
 * @param deps - public URL, status source, store, clock and id source
 */
export function cdsServices(deps: CdsServicesDeps): CdsServiceDefinition[] {
  const uuid = deps.uuid ?? randomUUID;
  const now = deps.now ?? (() => new Date());
  const sourceOf = (call: ServiceCall) => ({ label: 'CDSS brain-tumour MRI', url: call.baseUrl });

  async function tumourStatusCard(call: ServiceCall): Promise<HookResponse> {
    const { patientId } = call.context;
    const patient = resourcesOf<Patient>(call.prefetch['patient'], 'Patient')[0];
    const hasTumourProblem = resourcesOf<Condition>(call.prefetch['conditions'], 'Condition').some(
      isBrainTumourCondition,
    );
    const status = await deps.status.status(patientId);
    const latest = status.latest;
    if (!latest && !hasTumourProblem) return { cards: [] };
    const link = {
      label: latest ? 'Open the analysis in the CDSS dashboard' : 'Open the patient in the CDSS dashboard',
      url: `${call.baseUrl}/smart/launch`,
      type: 'smart' as const,
      appContext: JSON.stringify({ patientId, ...(latest ? { analysisId: latest.id } : {}) }),
    };
    const lines = [`**Patient:** ${whose(patient, patientId)}`];
    let summary: string;
    let indicator: Card['indicator'] = 'info';
    if (!latest) {
      summary = 'Brain tumour on the problem list: no AI volumetric MRI analysis yet';
      lines.push(
        'No MRI study of this patient has been analysed. Analyses start by themselves when a study with the four tumour sequences (T1, T1c, T2, FLAIR) arrives in the PACS.',
      );
    } else {
      const scan = latest.studyDate ? `MRI ${latest.studyDate}` : `MRI study ${latest.studyUid}`;
      lines.push(`**Latest study:** ${scan} — analysis ${latest.status}`);
      if (latest.status !== 'succeeded') {
        summary =
          latest.status === 'failed' || latest.status === 'cancelled'
            ? `AI tumour analysis of the ${scan} ${latest.status}`
            : `AI tumour analysis of the ${scan} is in progress`;
        if (latest.failure) lines.push(`Reason: ${latest.failure}`);
      } else {
        const review = latest.review?.status ?? 'pending';
        const assessment = status.assessment;
        const category = assessment ? CATEGORY_TEXT[assessment.category] : 'not evaluable';
        const flagged = (latest.flags?.length ?? 0) > 0;
        const flag =
          review === 'pending'
            ? flagged
              ? ' — flagged, awaiting review'
              : ' — awaiting review'
            : review === 'rejected'
              ? ' — result rejected'
              : flagged
                ? ' — flagged'
                : '';
        summary = `Brain tumour: ${category} (${assessment?.date ?? latest.studyDate ?? 'date unknown'})${flag}`;
        if (review !== 'approved' || flagged) indicator = 'warning';
        if (assessment?.category === 'progression' && review === 'approved') indicator = 'critical';
        if (latest.volumesMl) {
          const v = latest.volumesMl;
          lines.push(
            '',
            '| Region | Volume |',
            '| --- | --- |',
            `| Enhancing tumour | ${mL(v.enhancingTumor)} |`,
            `| Tumour core | ${mL(v.tumorCore)} |`,
            `| Whole tumour | ${mL(v.wholeTumor)} |`,
            '',
          );
        }
        if (flagged) lines.push(`**Flags:** ${latest.flags!.map((f) => `⚠ ${f}`).join('; ')}`, '');
        if (assessment)
          lines.push(
            `**Response (RANO-style, volumetric):** ${category}${
              assessment.changePercent !== undefined
                ? `, ${assessment.changePercent > 0 ? '+' : ''}${assessment.changePercent.toFixed(1)} % enhancing volume from baseline`
                : ''
            }${assessment.date ? ` (MRI ${assessment.date})` : ''}`,
          );
        lines.push(
          review === 'approved'
            ? `**Review:** approved${latest.review?.reviewer ? ` by ${latest.review.reviewerName ?? latest.review.reviewer}` : ''}${latest.review?.reviewedAt ? ` on ${latest.review.reviewedAt.slice(0, 10)}` : ''}`
            : review === 'rejected'
              ? '**Review:** ⚠ the radiologist rejected this result; do not use it'
              : '**Review:** ⚠ awaiting radiologist review (preliminary)',
        );
      }
      const newest = resourcesOf<ImagingStudy>(call.prefetch['imagingStudy'], 'ImagingStudy')[0]?.started?.slice(0, 10);
      if (newest && latest.studyDate && newest > latest.studyDate)
        lines.push(`**Newer study in the EHR:** ${newest}, not analysed yet`);
      lines.push(
        '',
        `_Model ${latest.model.id} ${latest.model.version}: research and demonstration only, **not for clinical use**._`,
      );
    }
    return {
      cards: [
        {
          uuid: uuid(),
          summary: summary.slice(0, 139),
          detail: lines.join('\n'),
          indicator,
          source: sourceOf(call),
          links: [link],
        },
      ],
    };
  }

  async function mriOrderCards(call: ServiceCall, serviceId: string, selectedOnly: boolean): Promise<HookResponse> {
    const { patientId, selections } = call.context;
    const entries = (call.context.draftOrders?.entry ?? []) as Array<{ resource?: { resourceType?: string } }>;
    const orders = entries
      .map((e) => e.resource)
      .filter((r): r is ServiceRequest => r?.resourceType === 'ServiceRequest')
      .filter((order) => !selectedOnly || (selections ?? []).includes(`ServiceRequest/${order.id ?? ''}`))
      .filter(isBrainMriOrder);
    const hasTumourProblem = resourcesOf<Condition>(call.prefetch['conditions'], 'Condition').some(
      isBrainTumourCondition,
    );
    const requested = await deps.store.autoAnalysisRequests(patientId, now().getTime() - 180 * 86_400_000);
    const cards: Card[] = [];
    for (const order of orders) {
      const orderRef = `ServiceRequest/${order.id ?? ''}`;
      const cardUuid = uuid();
      const suggestions: Offer['suggestions'] = [];
      const card: Card = {
        uuid: cardUuid,
        summary: hasTumourProtocol(order)
          ? 'Brain MRI with the tumour protocol: offer AI volumetry when the study arrives'
          : 'Brain MRI: order the four-sequence tumour protocol (T1, T1c, T2, FLAIR)',
        detail: [
          'AI tumour volumetry needs all four sequences: T1 pre-contrast, T1 post-contrast (gadolinium), T2 and T2-FLAIR.',
          hasTumourProblem
            ? 'The patient has a brain tumour on the problem list, so the study will be analysed automatically when it arrives.'
            : 'Accept the automatic analysis to have the study analysed as soon as it arrives in the PACS; the result is preliminary until a radiologist reviews it.',
          '',
          '_AI results are research and demonstration only, **not for clinical use**._',
        ].join('\n'),
        indicator: 'info',
        source: sourceOf(call),
        selectionBehavior: 'any',
        overrideReasons: ORDER_OVERRIDE_REASONS,
      };
      const cardSuggestions: NonNullable<Card['suggestions']> = [];
      if (!hasTumourProtocol(order)) {
        const id = uuid();
        suggestions.push({ uuid: id, kind: 'tumour-protocol' });
        cardSuggestions.push({
          label: 'Use the brain tumour MRI protocol (T1, T1c, T2, FLAIR)',
          uuid: id,
          isRecommended: true,
          actions: [
            {
              type: 'update',
              description: 'Add the four tumour sequences and contrast to the MRI order',
              resource: withTumourProtocol(order) as unknown as { resourceType: string },
            },
          ],
        });
      }
      const alreadyRequested = hasTumourProblem || requested.some((r) => r.orderRef === orderRef);
      if (!alreadyRequested) {
        const id = uuid();
        suggestions.push({ uuid: id, kind: 'auto-analysis' });
        const analysisOrder: ServiceRequest = {
          resourceType: 'ServiceRequest',
          status: 'active',
          intent: 'order',
          code: { coding: [AUTO_ANALYSIS_CODE], text: AUTO_ANALYSIS_CODE.display ?? '' },
          subject: { reference: `Patient/${patientId}` },
          ...(order.id ? { basedOn: [{ reference: orderRef }] } : {}),
          requester: { reference: call.context.userId },
          note: [{ text: 'Analyse the study of the MRI order automatically when it arrives in the PACS.' }],
        };
        cardSuggestions.push({
          label: 'Analyse the study automatically when it arrives',
          uuid: id,
          isRecommended: true,
          actions: [
            {
              type: 'create',
              description: 'Order an AI tumour segmentation of the study of this MRI order',
              resource: analysisOrder as unknown as { resourceType: string },
            },
          ],
        });
      }
      if (cardSuggestions.length === 0) continue;
      card.suggestions = cardSuggestions;
      cards.push(card);
      await deps.store.recordOffer({
        cardUuid,
        serviceId,
        patientId,
        hookInstance: call.hookInstance,
        orderRefs: [orderRef],
        suggestions,
        createdAt: now().getTime(),
      });
    }
    return { cards };
  }

  /** The order services: `order-select` looks at the selected orders, `order-sign` at every draft order. */
  const orderService = (
    hook: 'order-select' | 'order-sign',
    id: string,
    title: string,
    when: string,
  ): CdsServiceDefinition => ({
    definition: {
      hook,
      id,
      title,
      description: `${when}, suggests the four-sequence tumour protocol and an automatic AI analysis once the study arrives.`,
      prefetch: { patient: PATIENT_TEMPLATE.query, conditions: CONDITIONS_TEMPLATE.query },
    },
    templates: { patient: PATIENT_TEMPLATE, conditions: CONDITIONS_TEMPLATE },
    answer: (call) => mriOrderCards(call, id, hook === 'order-select'),
  });
  return [
    {
      definition: {
        hook: 'patient-view',
        id: CDS_SERVICE_IDS.tumourStatus,
        title: 'Brain tumour MRI status',
        description:
          'The latest AI volumetric brain-tumour result: RANO-style response category, scan date, review state, and a link into the CDSS dashboard.',
        prefetch: {
          patient: PATIENT_TEMPLATE.query,
          conditions: CONDITIONS_TEMPLATE.query,
          imagingStudy: IMAGING_TEMPLATE.query,
        },
        usageRequirements: 'The dashboard link is a SMART launch: register the CDSS dashboard as a SMART app.',
      },
      templates: { patient: PATIENT_TEMPLATE, conditions: CONDITIONS_TEMPLATE, imagingStudy: IMAGING_TEMPLATE },
      answer: tumourStatusCard,
    },
    orderService(
      'order-select',
      CDS_SERVICE_IDS.mriProtocolSelect,
      'Brain MRI tumour protocol',
      'On a brain MRI order',
    ),
    orderService(
      'order-sign',
      CDS_SERVICE_IDS.mriProtocolSign,
      'Brain MRI tumour protocol (at signing)',
      'When a brain MRI order is signed',
    ),
  ];
}
