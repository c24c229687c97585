/**
 * What each role may do, mirrored from the server's policy so the UI shows only what will work. The server still
 * enforces it (403); this only decides which buttons and screens appear.
 */
export type Permission =
  | 'patient:read'
  | 'patient:write'
  | 'study:read'
  | 'analysis:read'
  | 'analysis:request'
  | 'analysis:cancel'
  | 'analysis:review'
  | 'audit:read';

const POLICY: Readonly<Record<string, readonly Permission[]>> = {
  admin: ['patient:read', 'study:read', 'analysis:read', 'audit:read'],
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
  'ai-service': ['study:read'],
};

/**
 * True when the role grants the permission.
 * @param role - the signed-in user's role
 * @param permission - what a screen or button needs
 */
export function can(role: string | undefined, permission: Permission): boolean {
  return role !== undefined && (POLICY[role]?.includes(permission) ?? false);
}
