/**
 * What the CDS Hooks service keeps: JWT ids (replay check), the cards it sent with suggestions (so feedback can be
 * tied to a patient and an order), the feedback itself, and the automatic-analysis requests that accepted feedback
 * creates. In memory for sandbox mode; in MySQL in connected mode, so every server instance sees the same state.
 */
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { z } from 'zod';
import { createMemoryJtiStore, type JtiReplayStore } from './caller-auth.js';
import type { FeedbackItem } from './schemas.js';

/** What a suggestion does when accepted. */
export type SuggestionKind = 'tumour-protocol' | 'auto-analysis';

/** A card sent with suggestions. */
export const offerSchema = z.object({
  cardUuid: z.string(),
  serviceId: z.string(),
  patientId: z.string(),
  hookInstance: z.string(),
  /** The orders the card is about (`ServiceRequest/…`). */
  orderRefs: z.array(z.string()),
  suggestions: z.array(z.object({ uuid: z.string(), kind: z.enum(['tumour-protocol', 'auto-analysis']) })),
  createdAt: z.number(),
});
/** A card sent with suggestions. */
export type Offer = z.infer<typeof offerSchema>;

/** Feedback as received, with who sent it and the patient of its card when known. */
export interface StoredFeedback {
  serviceId: string;
  caller: string;
  patientId?: string;
  item: FeedbackItem;
  receivedAt: number;
}

/** An accepted offer of automatic analysis: the next tumour-protocol study of the patient is analysed. */
export interface AutoAnalysisRequest {
  patientId: string;
  cardUuid: string;
  orderRef?: string;
  requestedBy: string;
  requestedAt: number;
}

/** The CDS Hooks service's state. */
export interface CdsStore extends JtiReplayStore {
  recordOffer(offer: Offer): Promise<void>;
  offer(cardUuid: string): Promise<Offer | undefined>;
  recordFeedback(feedback: StoredFeedback): Promise<void>;
  /** Feedback of a card, oldest first. */
  feedbackOf(cardUuid: string): Promise<StoredFeedback[]>;
  /** Records an automatic-analysis request (once per patient and card). */
  requestAutoAnalysis(request: AutoAnalysisRequest): Promise<void>;
  /** The patient's requests made since `since` (epoch ms), newest first. */
  autoAnalysisRequests(patientId: string, since: number): Promise<AutoAnalysisRequest[]>;
}

/** A store in memory. */
export function createMemoryCdsStore(): CdsStore {
  const jti = createMemoryJtiStore();
  const offers = new Map<string, Offer>();
  const feedback: StoredFeedback[] = [];
  const requests: AutoAnalysisRequest[] = [];
  return {
    remember: (key, expiresAt) => jti.remember(key, expiresAt),
    async recordOffer(offer) {
      offers.set(offer.cardUuid, offer);
    },
    async offer(cardUuid) {
      return offers.get(cardUuid);
    },
    async recordFeedback(entry) {
      feedback.push(entry);
    },
    async feedbackOf(cardUuid) {
      return feedback.filter((f) => f.item.card === cardUuid);
    },
    async requestAutoAnalysis(request) {
      if (requests.some((r) => r.patientId === request.patientId && r.cardUuid === request.cardUuid)) return;
      requests.push(request);
    },
    async autoAnalysisRequests(patientId, since) {
      return requests
        .filter((r) => r.patientId === patientId && r.requestedAt >= since)
        .sort((a, b) => b.requestedAt - a.requestedAt);
    },
  };
}

const tablePrefixSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,30}$/);

/**
 * A store in MySQL/MariaDB (tables created when missing).
 * @param pool - a mysql2 promise pool (not closed by the store)
 * @param tablePrefix - prefix of the four tables (default `cdss_cds_`)
 */
export async function createMySqlCdsStore(pool: Pool, tablePrefix = 'cdss_cds_'): Promise<CdsStore> {
  const p = tablePrefixSchema.parse(tablePrefix);
  const t = { jti: `${p}jti`, offers: `${p}offers`, feedback: `${p}feedback`, requests: `${p}auto_analysis` };
  for (const ddl of [
    `CREATE TABLE IF NOT EXISTS ${t.jti} (
       jkey VARCHAR(400) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
       expires_at BIGINT NOT NULL, KEY idx_expires (expires_at)) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${t.offers} (
       card_uuid VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
       patient_id VARCHAR(64) NOT NULL, body LONGTEXT NOT NULL, created_at BIGINT NOT NULL) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${t.feedback} (
       id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, card_uuid VARCHAR(200) NOT NULL, service_id VARCHAR(100) NOT NULL,
       outcome VARCHAR(16) NOT NULL, patient_id VARCHAR(64) NULL, caller VARCHAR(300) NOT NULL, body LONGTEXT NOT NULL,
       received_at BIGINT NOT NULL, KEY idx_card (card_uuid), KEY idx_patient (patient_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${t.requests} (
       patient_id VARCHAR(64) NOT NULL, card_uuid VARCHAR(64) CHARACTER SET ascii NOT NULL,
       order_ref VARCHAR(200) NULL, requested_by VARCHAR(300) NOT NULL, requested_at BIGINT NOT NULL,
       PRIMARY KEY (patient_id, card_uuid), KEY idx_time (patient_id, requested_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  ])
    await pool.query(ddl);

  let lastSweep = 0;
  return {
    async remember(key, expiresAt) {
      const now = Date.now();
      if (now - lastSweep > 60_000) {
        lastSweep = now;
        await pool.execute(`DELETE FROM ${t.jti} WHERE expires_at < ? LIMIT 1000`, [now - 60_000]);
      }
      const [inserted] = await pool.execute<ResultSetHeader>(
        `INSERT IGNORE INTO ${t.jti} (jkey, expires_at) VALUES (?, ?)`,
        [key, expiresAt],
      );
      if (inserted.affectedRows > 0) return true;
      // Seen before: only an id whose JWT has expired may be taken again (its WHERE matches nothing otherwise,
      // whatever the driver's found-rows setting).
      const [renewed] = await pool.execute<ResultSetHeader>(
        `UPDATE ${t.jti} SET expires_at = ? WHERE jkey = ? AND expires_at < ?`,
        [expiresAt, key, now],
      );
      return renewed.affectedRows > 0;
    },
    async recordOffer(offer) {
      await pool.execute(
        `INSERT INTO ${t.offers} (card_uuid, patient_id, body, created_at) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE card_uuid = card_uuid`,
        [offer.cardUuid, offer.patientId, JSON.stringify(offer), offer.createdAt],
      );
    },
    async offer(cardUuid) {
      const [rows] = await pool.execute<RowDataPacket[]>(`SELECT body FROM ${t.offers} WHERE card_uuid = ?`, [
        cardUuid,
      ]);
      const row = rows[0];
      return row ? offerSchema.parse(JSON.parse(String(row['body']))) : undefined;
    },
    async recordFeedback(entry) {
      await pool.execute(
        `INSERT INTO ${t.feedback} (card_uuid, service_id, outcome, patient_id, caller, body, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        [
          entry.item.card,
          entry.serviceId,
          entry.item.outcome,
          entry.patientId ?? null,
          entry.caller,
          JSON.stringify(entry.item),
          entry.receivedAt,
        ],
      );
    },
    async feedbackOf(cardUuid) {
      const [rows] = await pool.execute<RowDataPacket[]>(
        `SELECT service_id, caller, patient_id, body, received_at FROM ${t.feedback} WHERE card_uuid = ? ORDER BY id`,
        [cardUuid],
      );
      return rows.map((row) => ({
        serviceId: String(row['service_id']),
        caller: String(row['caller']),
        ...(row['patient_id'] ? { patientId: String(row['patient_id']) } : {}),
        item: JSON.parse(String(row['body'])) as FeedbackItem,
        receivedAt: Number(row['received_at']),
      }));
    },
    async requestAutoAnalysis(request) {
      await pool.execute(
        `INSERT IGNORE INTO ${t.requests} (patient_id, card_uuid, order_ref, requested_by, requested_at)
         VALUES (?, ?, ?, ?, ?)`,
        [request.patientId, request.cardUuid, request.orderRef ?? null, request.requestedBy, request.requestedAt],
      );
    },
    async autoAnalysisRequests(patientId, since) {
      const [rows] = await pool.execute<RowDataPacket[]>(
        `SELECT patient_id, card_uuid, order_ref, requested_by, requested_at FROM ${t.requests}
         WHERE patient_id = ? AND requested_at >= ? ORDER BY requested_at DESC LIMIT 20`,
        [patientId, since],
      );
      return rows.map((row) => ({
        patientId: String(row['patient_id']),
        cardUuid: String(row['card_uuid']),
        ...(row['order_ref'] ? { orderRef: String(row['order_ref']) } : {}),
        requestedBy: String(row['requested_by']),
        requestedAt: Number(row['requested_at']),
      }));
    },
  };
}
