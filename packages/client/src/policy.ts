/**
 * The RBAC policy: which role may do what. The reference server enforces it on every route (it is the one table the
 * server consults); clients use the same table to show only what will work.
 */
import { z } from 'zod';

/** Roles a token may carry. */
export const roleSchema = z.enum(['admin', 'physician', 'radiologist', 'nurse', 'ai-service']);
/** A role. */
export type Role = z.infer<typeof roleSchema>;
/** Every role, in display order. */
export const ROLES: readonly Role[] = roleSchema.options;

/** Permissions that routes require. */
export const PERMISSIONS = [
  'patient:read',
  'patient:write',
  'study:read',
  'analysis:read',
  'analysis:request',
  'analysis:cancel',
  'analysis:review',
  'analysis:report-result',
  'audit:read',
  'metrics:read',
] as const;
/** A permission. */
export type Permission = (typeof PERMISSIONS)[number];

/**
 * Who may do what. Clinical roles see clinical data; only radiologists review AI results; nurses cannot request
 * analyses; the AI service may only read studies and report results; admins read the audit log and operational data.
 */
export const POLICY: Readonly<Record<Role, readonly Permission[]>> = {
  admin: ['patient:read', 'study:read', 'analysis:read', 'audit:read', 'metrics:read'],
  physician: ['patient:read', 'patient:write', 'study:read', 'analysis:read', 'analysis:request', 'analysis:cancel'],
  radiologist: [
    'patient:read',
    'study:read',
    'analysis:read',
    'analysis:request',
    'analysis:cancel',
    'analysis:review',
  ],
  nurse: ['patient:read', 'patient:write', 'study:read', 'analysis:read'],
  'ai-service': ['study:read', 'analysis:report-result'],
};

/**
 * True when any of the roles grants the permission (unknown role names grant nothing).
 * @param roles - the caller's roles
 * @param permission - what is needed
 */
export function isAllowed(roles: readonly string[], permission: Permission): boolean {
  return roles.some(
    (role) => (POLICY as Readonly<Record<string, readonly Permission[]>>)[role]?.includes(permission) ?? false,
  );
}

/**
 * The roles the policy grants a permission to.
 * @param permission - the permission
 */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((role) => POLICY[role].includes(permission));
}
