export { createCdssClient } from './client.js';
export type { AuditQuery, CdssClient, CdssClientOptions, VoxelGrid } from './client.js';
export { connectEvents } from './events.js';
export type { EventStream, EventStreamOptions, WebSocketLike } from './events.js';
export { CdssApiError, duplicateCandidates } from './errors.js';
export type { DuplicateCandidate } from './errors.js';
export { roleSchema, ROLES, PERMISSIONS, POLICY, isAllowed, rolesWith } from './policy.js';
export type { Role, Permission } from './policy.js';
export * from './schemas.js';
