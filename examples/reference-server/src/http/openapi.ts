/**
 * The OpenAPI 3.1 document, generated from the route table's zod schemas.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { AnyRoute } from './route.js';

extendZodWithOpenApi(z);

const operationOutcomeSchema = z
  .object({
    resourceType: z.literal('OperationOutcome'),
    issue: z.array(
      z.object({
        severity: z.string(),
        code: z.string(),
        diagnostics: z.string().optional(),
        expression: z.array(z.string()).optional(),
      }),
    ),
  })
  .openapi('OperationOutcome');

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (OperationOutcome names each problem)',
  401: 'Missing or invalid credentials',
  403: 'The caller’s role may not do this',
  404: 'Not found',
  409: 'Conflict',
  405: 'Method not allowed (the `Allow` header lists the methods of the path)',
  413: 'Request body too large',
  429: 'Too many requests',
  431: 'Request header fields too large (headers, or the URL with its query, over the server’s limit)',
  503: 'An upstream system is unavailable',
};

/**
 * Builds the document.
 * @param routes - the route table
 * @param info - title and version
 */
export function buildOpenApiDocument(
  routes: readonly AnyRoute[],
  info: { title: string; version: string; description?: string },
): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  const signature = registry.registerComponent('securitySchemes', 'webhookSignature', {
    type: 'apiKey',
    in: 'header',
    name: 'CDSS-Signature',
    description:
      '`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`: the webhook secret signs the timestamp and the exact body bytes (see @cdss/ai-jobs)',
  });
  for (const route of routes) {
    const errors = new Set<number>([
      ...(route.access === 'public' ? [] : [401]),
      ...(typeof route.access === 'object' ? [403] : []),
      ...(route.body ? [400, 413] : route.params || route.query ? [400] : []),
      ...(route.errors ?? []),
      // Every request passes the rate limits and the HTTP parser's size limits.
      429,
      431,
    ]);
    registry.registerPath({
      method: route.method,
      path: route.path,
      operationId: route.operationId,
      summary: route.summary,
      tags: route.tags,
      ...(route.access === 'public'
        ? { security: [] }
        : route.access === 'webhook-signature'
          ? { security: [{ [signature.name]: [] }] }
          : { security: [{ [bearer.name]: [] }], description: `Requires permission \`${route.access.permission}\`.` }),
      request: {
        ...(route.params ? { params: route.params as z.ZodObject } : {}),
        ...(route.query ? { query: route.query as z.ZodObject } : {}),
        ...(route.headers ? { headers: route.headers } : {}),
        ...(route.body
          ? {
              body: {
                // A body is required unless its schema accepts none at all.
                required: !route.body.safeParse(undefined).success,
                content: { [route.bodyContentType ?? 'application/json']: { schema: route.body } },
              },
            }
          : {}),
      },
      responses: {
        [route.response.status]: {
          description: route.response.description,
          // 204 has no content (RFC 9110 §15.3.5), so no media type either.
          ...(route.response.status === 204
            ? {}
            : { content: { [route.response.contentType ?? 'application/json']: { schema: route.response.schema } } }),
        },
        ...Object.fromEntries(
          [...errors].map((status) => [
            status,
            {
              description: ERROR_DESCRIPTIONS[status] ?? 'Error',
              content: { 'application/fhir+json': { schema: operationOutcomeSchema } },
            },
          ]),
        ),
      },
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({ openapi: '3.1.0', info });
}

/** A small browsable page for the document (no CDN: the schema is rendered by a few lines of script). */
export const OPENAPI_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CDSS API</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:70rem}code{background:#f3f3f3;padding:0 .3em}
.op{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.5rem 1rem}.m{font-weight:700;text-transform:uppercase;margin-right:.5rem}
pre{background:#f7f7f7;padding:.5rem;overflow:auto;max-height:20rem}</style></head>
<body><h1>CDSS reference server API</h1><p>Machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p><main id="ops">Loading…</main>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{const main=document.getElementById('ops');main.textContent='';
for(const [path,item] of Object.entries(doc.paths)){for(const [method,op] of Object.entries(item)){
const d=document.createElement('details');d.className='op';const s=document.createElement('summary');
s.innerHTML='<span class="m"></span><code></code> <span></span>';s.children[0].textContent=method;s.children[1].textContent=path;s.children[2].textContent=op.summary||'';
const pre=document.createElement('pre');pre.textContent=JSON.stringify(op,null,2);d.append(s,pre);main.append(d);}}});
</script></body></html>`;
