/**
 * What each role may do: the server's own policy table, from `@cdss/client`, so the UI shows only what will work.
 * The server still enforces it (403); this only decides which buttons and screens appear.
 */
import { isAllowed, type Permission } from '@cdss/client';

export type { Permission };

/**
 * True when the role grants the permission.
 * @param role - the signed-in user's role
 * @param permission - what a screen or button needs
 */
export function can(role: string | undefined, permission: Permission): boolean {
  return role !== undefined && isAllowed([role], permission);
}
