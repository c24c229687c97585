/**
 * The one RBAC policy table, shared with clients through `@cdss/client`. Every route names the permission it needs
 * (see `http/route.ts`); nothing else decides access.
 */
export { roleSchema, ROLES, PERMISSIONS, POLICY, isAllowed, rolesWith } from '@cdss/client';
export type { Role, Permission } from '@cdss/client';
