/**
 * Holds OpenEMR traffic to OpenEMR's published OpenAPI spec (shared/reference/openemr/), with ajv 8 +
 * ajv-formats over the spec's own schemas. Used by the contract suite on every request the client sends
 * and every response the emulator returns. Not part of the published package.
 *
 * Why ajv rather than openapi-backend 5.21.2: openapi-backend pulls @apidevtools/json-schema-ref-parser 16,
 * which declares Node >= 22.19 and fails `engineStrict` on our Node 20; ajv needs nothing else, and
 * routing a request to its operation is a few lines. The spec files are normalised in memory first (never
 * edited): the 8.x file's `security: - openemr_auth: {}` entries become `[]`, and the 7.0.2 file's
 * duplicated `GET /fhir/Immunization` parameter is dropped (notes §0).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** One exchange seen on the wire. */
export interface Exchange {
  method: string;
  /** Path and query, e.g. `/apis/default/api/patient?_limit=10`. */
  url: string;
  requestHeaders: Record<string, string | undefined>;
  requestBody: string | undefined;
  status: number;
  responseHeaders: Record<string, string | undefined>;
  responseBody: string | undefined;
}

/** A difference between an exchange and the spec. */
export interface Violation {
  side: 'request' | 'response';
  /** What kind of difference. */
  kind:
    | 'unknown-operation'
    | 'missing-auth'
    | 'query'
    | 'path-param'
    | 'body'
    | 'undeclared-status'
    | 'response-body'
    | 'unexpected-body';
  method: string;
  /** The spec's path template, e.g. `/api/patient/{puuid}`. */
  template: string;
  status?: number | undefined;
  detail: string;
  errors?: ErrorObject[] | undefined;
}

interface Operation {
  method: string;
  template: string;
  regex: RegExp;
  pathParams: string[];
  query: Map<string, ValidateFunction>;
  requiredQuery: string[];
  pathSchemas: Map<string, ValidateFunction>;
  body: ValidateFunction | undefined;
  bodyRequired: boolean;
  responses: Map<string, ValidateFunction | null>;
  secured: boolean;
}

type Json = Record<string, unknown>;

function normalise(doc: Json): Json {
  const paths = doc['paths'] as Record<string, Record<string, Json>>;
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      if (typeof op !== 'object' || op === null) continue;
      const security = op['security'];
      if (Array.isArray(security)) {
        op['security'] = security.map((s: Json) =>
          Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Array.isArray(v) ? v : []])),
        );
      }
      const params = op['parameters'];
      if (Array.isArray(params)) {
        const seen = new Set<string>();
        op['parameters'] = params.filter((p: Json) => {
          const key = `${String(p['in'])}:${String(p['name'] ?? p['$ref'])}`;
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        });
      }
      const responses = op['responses'] as Json | undefined;
      if (responses) op['responses'] = Object.fromEntries(Object.entries(responses).map(([k, v]) => [String(k), v]));
    }
  }
  return doc;
}

const esc = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The spec, compiled. */
export class OpenApiValidator {
  private readonly ajv: Ajv;
  private readonly ops: Operation[] = [];
  /** The prefix the spec's `servers[0].url` puts before every path (`/apis/default`). */
  readonly prefix: string;

  /**
   * @param specFile - path of the YAML spec
   */
  constructor(specFile: string) {
    const doc = normalise(parse(readFileSync(specFile, 'utf8'), { intAsBigInt: false }) as Json);
    this.prefix = String(((doc['servers'] as Json[] | undefined)?.[0]?.['url'] as string | undefined) ?? '').replace(
      /\/+$/,
      '',
    );
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, discriminator: false });
    addFormats(this.ajv);
    this.ajv.addSchema(doc, 'spec');
    const paths = doc['paths'] as Record<string, Record<string, Json>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const base = `spec#/paths/${esc(template)}/${method}`;
        const pathParams = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? '');
        const regex = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '([^/]+)')}$`);
        const query = new Map<string, ValidateFunction>();
        const requiredQuery: string[] = [];
        const pathSchemas = new Map<string, ValidateFunction>();
        const params = (op['parameters'] as Json[] | undefined) ?? [];
        params.forEach((p, i) => {
          const resolved = this.resolveParam(doc, p);
          const schemaRef =
            p['$ref'] !== undefined ? `spec${String(p['$ref'])}/schema` : `${base}/parameters/${i}/schema`;
          const schemaValidate = this.ajv.compile({ $ref: schemaRef });
          if (resolved.in === 'query') {
            query.set(resolved.name, schemaValidate);
            if (resolved.required) requiredQuery.push(resolved.name);
          } else if (resolved.in === 'path') pathSchemas.set(resolved.name, schemaValidate);
        });
        const rb = op['requestBody'] as Json | undefined;
        const hasJsonBody = rb !== undefined && (rb['content'] as Json | undefined)?.['application/json'] !== undefined;
        const responses = new Map<string, ValidateFunction | null>();
        for (const [code, resp] of Object.entries((op['responses'] as Json | undefined) ?? {})) {
          const r = resp as Json;
          const ref = r['$ref'] as string | undefined;
          const target = ref !== undefined ? `spec${ref}` : `${base}/responses/${esc(code)}`;
          const resolvedResp = ref !== undefined ? this.lookup(doc, ref) : r;
          const hasSchema =
            ((resolvedResp['content'] as Json | undefined)?.['application/json'] as Json | undefined)?.['schema'] !==
            undefined;
          responses.set(
            code,
            hasSchema ? this.ajv.compile({ $ref: `${target}/content/application~1json/schema` }) : null,
          );
        }
        const security = op['security'] as unknown[] | undefined;
        this.ops.push({
          method: method.toUpperCase(),
          template,
          regex,
          pathParams,
          query,
          requiredQuery,
          pathSchemas,
          body: hasJsonBody
            ? this.ajv.compile({ $ref: `${base}/requestBody/content/application~1json/schema` })
            : undefined,
          bodyRequired: rb?.['required'] === true,
          responses,
          secured: Array.isArray(security) && security.length > 0,
        });
      }
    }
  }

  private lookup(doc: Json, ref: string): Json {
    let node: unknown = doc;
    for (const part of ref.replace(/^#\//, '').split('/'))
      node = (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    return node as Json;
  }

  private resolveParam(doc: Json, p: Json): { name: string; in: string; required: boolean } {
    const r = p['$ref'] !== undefined ? this.lookup(doc, String(p['$ref'])) : p;
    return { name: String(r['name']), in: String(r['in']), required: r['required'] === true };
  }

  /** Finds the operation of a method and spec path (without the server prefix). */
  private find(method: string, path: string): { op: Operation; params: Record<string, string> } | undefined {
    for (const op of this.ops) {
      if (op.method !== method) continue;
      const m = op.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      op.pathParams.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1] ?? '')));
      return { op, params };
    }
    return undefined;
  }

  /** The operation template an exchange maps to, if the spec has it. */
  templateOf(method: string, url: string): string | undefined {
    const path = new URL(url, 'http://x').pathname;
    if (!path.startsWith(`${this.prefix}/`)) return undefined;
    return this.find(method.toUpperCase(), path.slice(this.prefix.length))?.op.template;
  }

  /**
   * Checks one exchange against the spec.
   * @param ex - the exchange
   * @returns every violation (empty when it conforms)
   */
  check(ex: Exchange): Violation[] {
    const url = new URL(ex.url, 'http://x');
    const method = ex.method.toUpperCase();
    if (!url.pathname.startsWith(`${this.prefix}/`)) return [];
    const path = url.pathname.slice(this.prefix.length);
    const found = this.find(method, path);
    if (!found)
      return [
        {
          side: 'request',
          kind: 'unknown-operation',
          method,
          template: path,
          detail: `${method} ${path} is not in the spec`,
        },
      ];
    const { op, params } = found;
    const out: Violation[] = [];
    const v = (
      side: Violation['side'],
      kind: Violation['kind'],
      detail: string,
      errors?: ErrorObject[],
      status?: number,
    ): void => {
      out.push({ side, kind, method, template: op.template, detail, errors, status });
    };
    // Request
    if (op.secured && !/^Bearer \S+/.test(ex.requestHeaders['authorization'] ?? ''))
      v('request', 'missing-auth', 'no bearer token on a secured operation');
    for (const [name, value] of Object.entries(params)) {
      const validate = op.pathSchemas.get(name);
      if (validate && !validate(value)) v('request', 'path-param', `path parameter ${name}`, validate.errors ?? []);
    }
    for (const [name, value] of url.searchParams) {
      const validate = op.query.get(name);
      if (!validate) {
        v('request', 'query', `query parameter ${name} is not in the spec`);
        continue;
      }
      const coerced = /^-?\d+$/.test(value) && !validate(value) ? Number(value) : value;
      if (!validate(coerced)) v('request', 'query', `query parameter ${name}`, validate.errors ?? []);
    }
    for (const name of op.requiredQuery)
      if (!url.searchParams.has(name)) v('request', 'query', `missing required query parameter ${name}`);
    const hasBody = ex.requestBody !== undefined && ex.requestBody !== '';
    if (op.body) {
      if (!hasBody) {
        if (op.bodyRequired) v('request', 'body', 'missing required body');
      } else {
        let body: unknown;
        try {
          body = JSON.parse(ex.requestBody ?? '');
        } catch {
          v('request', 'body', 'body is not JSON');
        }
        if (body !== undefined && !op.body(body)) v('request', 'body', 'request body', op.body.errors ?? []);
      }
    } else if (hasBody) v('request', 'unexpected-body', 'a body on an operation that declares none');
    // Response
    const code = String(ex.status);
    if (!op.responses.has(code) && !op.responses.has('default')) {
      v(
        'response',
        'undeclared-status',
        `status ${code} is not declared (declared: ${[...op.responses.keys()].join(', ')})`,
        undefined,
        ex.status,
      );
      return out;
    }
    const validate = op.responses.get(code) ?? op.responses.get('default') ?? null;
    if (validate && ex.responseBody !== undefined && ex.responseBody !== '') {
      let body: unknown;
      try {
        body = JSON.parse(ex.responseBody);
      } catch {
        v('response', 'response-body', 'response body is not JSON', undefined, ex.status);
        return out;
      }
      if (!validate(body)) v('response', 'response-body', 'response body', validate.errors ?? [], ex.status);
    }
    return out;
  }
}
