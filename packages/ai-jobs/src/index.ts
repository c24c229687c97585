/**
 * `@cdss/ai-jobs`: the AI analysis job protocol. Versioned message schemas (also as JSON Schema files), an AMQP
 * and an in-memory transport with the same semantics, the job state machine with memory and MySQL stores, signed
 * webhooks and polling. See the README for the protocol, the topology and how a worker in another language speaks it.
 * The RabbitMQ transport is in `@cdss/ai-jobs/amqp` and the MySQL job store in `@cdss/ai-jobs/mysql`, so that only
 * their users need `amqplib` or `mysql2`.
 * @packageDocumentation
 */
export {
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  AMQP_PRIORITY,
  MESSAGE_SCHEMAS,
  dicomUidSchema,
  jobIdSchema,
  timestampSchema,
  jobPrioritySchema,
  jobStageSchema,
  failureReasonSchema,
  modelRefSchema,
  seriesSetSchema,
  regionVolumeSchema,
  lesionMeasurementSchema,
  resultFlagSchema,
  analysisResultSchema,
  analysisRequestedSchema,
  analysisAcceptedSchema,
  analysisProgressSchema,
  analysisSucceededSchema,
  analysisFailedSchema,
  analysisCancelledSchema,
  jobMessageSchema,
  jobEventSchema,
} from './protocol.js';
export type {
  JobPriority,
  JobStage,
  FailureReason,
  ModelRef,
  LesionMeasurement,
  ResultFlag,
  AnalysisResult,
  AnalysisRequested,
  AnalysisAccepted,
  AnalysisProgress,
  AnalysisSucceeded,
  AnalysisFailed,
  AnalysisCancelled,
  JobMessage,
  JobEvent,
  JobMessageType,
} from './protocol.js';
export { decodeMessage, encodeMessage, createMessage } from './codec.js';
export type { DecodeResult, DecodeFailureReason, MessageInput } from './codec.js';
export { protocolJsonSchemas, SCHEMA_ID_BASE } from './json-schema.js';
export {
  jobStateSchema,
  jobRecordSchema,
  TERMINAL_STATES,
  canTransition,
  assertTransition,
  decide,
  IllegalTransitionError,
  encodeJobCursor,
  decodeJobCursor,
  encodePageCursor,
  decodePageCursor,
  PAGE_CURSOR_PATTERN,
} from './job-state.js';
export type {
  JobState,
  JobRecord,
  JobTransition,
  JobStore,
  JobQuery,
  JobPageQuery,
  JobPage,
  JobStoreTransaction,
  ApplyOptions,
  ApplyResult,
  ApplyOutcome,
  Decision,
} from './job-state.js';
export { MemoryJobStore } from './memory-store.js';
export type { MemoryJobStoreOptions } from './memory-store.js';
export {
  ATTEMPT_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTER_DETAIL_HEADER,
  DEAD_LETTER_SOURCE_HEADER,
  WORK_ROUTING_KEY,
  CONTROL_CANCEL_ROUTING_KEY,
  deadLetterReasonSchema,
  topologyOptionsSchema,
  topologyNames,
} from './transport.js';
export type {
  JobTransport,
  Delivery,
  DeliveryHandler,
  DeadLetter,
  DeadLetterReason,
  OutgoingMessage,
  Consumer,
  ConsumeOptions,
  QueueName,
  TopologyOptions,
} from './transport.js';
export { MemoryTransport, MemoryBroker } from './memory-transport.js';
export type { MemoryTransportOptions } from './memory-transport.js';
export { JobWorker, JobFailure } from './worker.js';
export type { JobWorkerOptions, JobHandler, JobContext } from './worker.js';
export {
  JobClient,
  RequestAnalysis,
  CancelAnalysis,
  GetAnalysis,
  JobNotFoundError,
  requestAnalysisInputSchema,
  cancelAnalysisInputSchema,
  getAnalysisInputSchema,
} from './client.js';
export type { JobClientOptions, JobCommand, JobChange } from './client.js';
export {
  signWebhook,
  verifyWebhook,
  WebhookSender,
  WebhookVerificationError,
  MemoryReplayCache,
  SIGNATURE_HEADER,
  EVENT_TYPE_HEADER,
  MESSAGE_ID_HEADER,
} from './webhooks.js';
export type {
  VerifyWebhookOptions,
  WebhookSenderOptions,
  WebhookRejection,
  ReplayCache,
  FetchLike,
} from './webhooks.js';
export { pollJob } from './polling.js';
export type { PollJobOptions } from './polling.js';
export { silentLogger } from './logger.js';
export type { JobLogger } from './logger.js';
