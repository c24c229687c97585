/**
 * Drains the chart outbox into OpenEMR: for each approved analysis, renders the PDF report and files it as a patient
 * document in the configured category, through the OpenEMR client's upload (which lists the category before it sends
 * and confirms an unknown outcome by listing again, so a retry never files the report twice). Failures (OpenEMR, PACS
 * or job store unreachable; a category OpenEMR refuses until an administrator fixes the configuration) are retried
 * with backoff until they succeed; an entry whose review is no longer an approval is set aside.
 */
import type { Logger } from 'pino';
import type { Auditor } from '../domain/auditor.js';
import type { ChartOutbox, ChartItem } from './outbox.js';
import { renderReportPdf, type ReportDocumentInput } from './pdf-report.js';

/** Where reports are filed (OpenEMR's patient documents). */
export interface ChartDocuments {
  /**
   * Files a document once (idempotent by content).
   * @returns the document's id in the EMR, and whether this call created it
   */
  upload(input: {
    patientId: string;
    content: Uint8Array;
    filename: string;
    contentType: 'application/pdf';
    category: string;
  }): Promise<{ id: string; created: boolean }>;
}

/** What the delivery needs. */
export interface ChartDeliveryDeps {
  outbox: ChartOutbox;
  documents: ChartDocuments;
  /** The OpenEMR document category (configuration; OpenEMR has no endpoint that lists categories). */
  category: string;
  /** The report's content, or `not-approved` when the analysis's review is not (or no longer) an approval. */
  reportInput(analysisId: string): Promise<ReportDocumentInput | 'not-approved'>;
  auditor: Auditor;
  logger: Logger;
  /** First retry delay; doubles per attempt up to `maxDelayMs`. Defaults 2 s and 10 min. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  now?: () => number;
}

/** What one round did. */
export interface ChartRound {
  delivered: number;
  failed: number;
  dead: number;
}

/** The file name of an analysis's report in the chart. */
export const reportFilename = (analysisId: string): string => `cdss-ai-report-${analysisId}.pdf`;

/**
 * The delivery loop.
 * @param deps - outbox, documents port, category, report assembly, auditor
 */
export function chartDelivery(deps: ChartDeliveryDeps): {
  drainOnce(): Promise<ChartRound>;
  start(intervalMs?: number): void;
  stop(): Promise<void>;
} {
  const now = deps.now ?? Date.now;
  const base = deps.baseDelayMs ?? 2_000;
  const cap = deps.maxDelayMs ?? 600_000;
  const principal = { id: 'cdss-chart', name: 'Report filing (approved AI results)', roles: [] };
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<ChartRound> | undefined;

  async function deliver(item: ChartItem): Promise<keyof ChartRound> {
    try {
      const input = await deps.reportInput(item.analysisId);
      if (input === 'not-approved') {
        await deps.outbox.markDead(item.analysisId, 'the analysis is not approved');
        return 'dead';
      }
      const content = await renderReportPdf(input);
      const filed = await deps.auditor.around(
        {
          principal,
          requestId: `chart:${item.analysisId}`,
          action: 'create',
          resource: `DocumentReference/${reportFilename(item.analysisId)}`,
          patientId: item.patientId,
        },
        async (audit) => {
          const result = await deps.documents.upload({
            patientId: item.patientId,
            content,
            filename: reportFilename(item.analysisId),
            contentType: 'application/pdf',
            category: deps.category,
          });
          audit.resource = `DocumentReference/${result.id}`;
          return result;
        },
      );
      await deps.outbox.markDelivered(item.analysisId, filed.id);
      deps.logger.info(
        { analysisId: item.analysisId, documentId: filed.id, created: filed.created },
        'report filed in the chart',
      );
      return 'delivered';
    } catch (error) {
      const delay = Math.min(cap, base * 2 ** item.attempts);
      const reason = `${(error as Error).name}: ${(error as Error).message}`.slice(0, 300);
      deps.logger.warn(
        { analysisId: item.analysisId, attempt: item.attempts + 1, retryInMs: delay, reason },
        'report filing failed',
      );
      await deps.outbox.markFailed(item.analysisId, reason, now() + delay);
      return 'failed';
    }
  }

  async function round(): Promise<ChartRound> {
    const items = await deps.outbox.claimDue(now(), 10, 120_000);
    const result: ChartRound = { delivered: 0, failed: 0, dead: 0 };
    for (const item of items) result[await deliver(item)]++;
    return result;
  }

  const drainOnce = (): Promise<ChartRound> => {
    running ??= round().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    drainOnce,
    start(intervalMs = 2_000) {
      if (timer) return;
      const tick = (): void => {
        drainOnce()
          .catch((error: unknown) => deps.logger.error({ err: error }, 'chart outbox round failed'))
          .finally(() => {
            if (timer) timer = setTimeout(tick, intervalMs);
          });
      };
      timer = setTimeout(tick, 0);
    },
    async stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}
