/**
 * Prometheus metrics of the server. The names here are a contract with deploy/ (alert rules, Grafana dashboards):
 * a test checks that every metric those files use is exported.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The server's metrics, on their own registry (no global state). */
export interface ServerMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  cacheEvents: Counter<'cache' | 'event'>;
  upstreamDuration: Histogram<'port' | 'operation' | 'outcome'>;
  upstreamErrors: Counter<'port'>;
  jobsQueueDepth: Gauge;
  jobStageDuration: Histogram<'stage'>;
  jobsFinished: Counter<'status'>;
  outboxPending: Gauge;
  outboxOldestAgeSeconds: Gauge;
  outboxDeadLetters: Gauge;
  wsConnections: Gauge;
  wsRefused: Counter<'reason'>;
  auditEvents: Counter<'action' | 'outcome'>;
  auditGroupSize: Histogram;
}

/** Creates the registry and every metric. */
export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cdss_process_' });
  const registers = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'cdss_http_request_duration_seconds',
      help: 'HTTP request latency by route template and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    cacheEvents: new Counter({
      name: 'cdss_cache_events_total',
      help: 'Cache events: hit, miss, stale, load, load_error, eviction, repair',
      labelNames: ['cache', 'event'],
      registers,
    }),
    upstreamDuration: new Histogram({
      name: 'cdss_upstream_request_duration_seconds',
      help: 'Latency of calls to upstream systems by port (openemr, fhir, orthanc, jobs) and outcome',
      labelNames: ['port', 'operation', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'cdss_upstream_errors_total',
      help: 'Failed calls to upstream systems by port',
      labelNames: ['port'],
      registers,
    }),
    jobsQueueDepth: new Gauge({ name: 'cdss_jobs_queue_depth', help: 'Analysis jobs queued or running', registers }),
    jobStageDuration: new Histogram({
      name: 'cdss_job_stage_duration_seconds',
      help: 'Duration of each stage of an analysis job',
      labelNames: ['stage'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    jobsFinished: new Counter({
      name: 'cdss_jobs_finished_total',
      help: 'Analysis jobs by final status',
      labelNames: ['status'],
      registers,
    }),
    outboxPending: new Gauge({ name: 'cdss_outbox_pending', help: 'FHIR writes waiting in the outbox', registers }),
    outboxOldestAgeSeconds: new Gauge({
      name: 'cdss_outbox_oldest_age_seconds',
      help: 'Age of the oldest pending outbox entry',
      registers,
    }),
    outboxDeadLetters: new Gauge({
      name: 'cdss_outbox_dead_letters',
      help: 'FHIR writes the server rejected as invalid',
      registers,
    }),
    wsConnections: new Gauge({ name: 'cdss_websocket_connections', help: 'Open WebSocket connections', registers }),
    wsRefused: new Counter({
      name: 'cdss_websocket_refused_total',
      help: 'WebSocket upgrades refused because too many unauthenticated connections were open (per_address, total)',
      labelNames: ['reason'],
      registers,
    }),
    auditEvents: new Counter({
      name: 'cdss_audit_events_total',
      help: 'Audit records written',
      labelNames: ['action', 'outcome'],
      registers,
    }),
    auditGroupSize: new Histogram({
      name: 'cdss_audit_group_size',
      help: 'Audit records written together by group commit (one synchronised write, or one INSERT, per group)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers,
    }),
  };
}
