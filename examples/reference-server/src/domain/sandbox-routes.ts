/**
 * Sandbox only: lists the demo users and issues them tokens, so a newcomer can use the API and the dashboard without
 * an identity provider. These routes do not exist in connected mode.
 */
import { z } from 'zod';
import { demoUserSchema, tokenResponseSchema } from '../api-schemas.js';
import { DEMO_USERS, type SandboxIssuer } from '../auth/tokens.js';
import { defineRoute, type AnyRoute } from '../http/route.js';

/**
 * The sandbox routes.
 * @param issuer - the sandbox token issuer
 */
export function sandboxRoutes(issuer: SandboxIssuer): AnyRoute[] {
  return [
    defineRoute({
      method: 'get',
      path: '/api/sandbox/users',
      operationId: 'listDemoUsers',
      summary: 'Sandbox: the demo users, one per role',
      tags: ['sandbox'],
      access: 'public',
      response: { status: 200, description: 'Demo users', schema: z.array(demoUserSchema) },
      handler: async () => ({ body: DEMO_USERS.map((u) => ({ ...u })) }),
    }),
    defineRoute({
      method: 'post',
      path: '/api/sandbox/token',
      operationId: 'issueDemoToken',
      summary: 'Sandbox: an access token for a demo user (one hour)',
      tags: ['sandbox'],
      access: 'public',
      body: z.strictObject({ userId: z.enum(DEMO_USERS.map((u) => u.id) as [string, ...string[]]) }),
      response: { status: 200, description: 'A bearer token', schema: tokenResponseSchema },
      errors: [400],
      handler: async ({ body }) => {
        const issued = await issuer.issue(body.userId);
        return {
          body: {
            access_token: issued.accessToken,
            token_type: 'Bearer' as const,
            expires_in: issued.expiresIn,
            user: issued.user,
          },
        };
      },
    }),
  ];
}
