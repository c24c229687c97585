#!/usr/bin/env node
/**
 * Kubernetes JSON schemas for kubeconform, generated from the OpenAPI (Swagger 2.0) document that ships in the
 * `k8s.io/kubernetes` Go module (`api/openapi-spec/swagger.json`), so validating the chart needs nothing from the
 * network at test time.
 *
 *   node deploy/helm/kube-schemas.mjs <swagger.json> <output folder>
 *
 * One file per kind and API version, named as kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` expects
 * (`deployment-apps-v1.json`, `service-v1.json`, `networkpolicy-networking-v1.json`). Each file is standalone: the
 * kind's definition as `$ref`, with the definitions it reaches. Strict: objects with declared properties refuse
 * others (a misspelt field is an error), as kubeconform's `-strict` schemas do; int-or-string fields and quantities
 * take either form.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [swaggerPath, outDir] = process.argv.slice(2);
if (!swaggerPath || !outDir) {
  process.stderr.write('usage: kube-schemas.mjs <swagger.json> <output folder>\n');
  process.exit(2);
}
const { definitions } = JSON.parse(readFileSync(swaggerPath, 'utf8'));
const REF = '#/definitions/';

/** A definition's schema made strict, with refs kept as `#/definitions/...` and int-or-string spelt out. */
function convert(schema) {
  if (Array.isArray(schema)) return schema.map(convert);
  if (!schema || typeof schema !== 'object') return schema;
  if (schema.format === 'int-or-string' || schema['x-kubernetes-int-or-string'] === true) {
    const { type: _type, format: _format, ...rest } = schema;
    return { ...rest, oneOf: [{ type: 'string' }, { type: 'integer' }] };
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' || key === 'patternProperties') {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, convert(sub)]));
    } else out[key] = typeof value === 'object' ? convert(value) : value;
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const converted = Object.fromEntries(Object.entries(definitions).map(([name, schema]) => [name, convert(schema)]));
// A quantity is written as a string ("500m", "2Gi") or a plain number (1, 0.5).
converted['io.k8s.apimachinery.pkg.api.resource.Quantity'] = {
  ...converted['io.k8s.apimachinery.pkg.api.resource.Quantity'],
  type: undefined,
  oneOf: [{ type: 'string' }, { type: 'number' }],
};

/** The names of every definition a schema reaches. */
function closure(name, seen = new Set()) {
  if (seen.has(name)) return seen;
  seen.add(name);
  const visit = (node) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      if (typeof node.$ref === 'string' && node.$ref.startsWith(REF)) closure(node.$ref.slice(REF.length), seen);
      Object.values(node).forEach(visit);
    }
  };
  visit(converted[name]);
  return seen;
}

mkdirSync(outDir, { recursive: true });
let written = 0;
for (const [name, schema] of Object.entries(definitions)) {
  for (const gvk of schema['x-kubernetes-group-version-kind'] ?? []) {
    // Only the definition whose own apiVersion/kind are this GVK (not DeleteOptions and friends, listed for every GV).
    if (!schema.properties?.kind || name.endsWith('.DeleteOptions') || name.endsWith('.WatchEvent')) continue;
    const group = gvk.group ? `-${gvk.group.split('.')[0]}` : '';
    const file = `${gvk.kind.toLowerCase()}${group}-${gvk.version.toLowerCase()}.json`;
    const reached = [...closure(name)].sort();
    const document = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      $ref: `${REF}${name}`,
      definitions: Object.fromEntries(reached.map((n) => [n, converted[n]])),
    };
    writeFileSync(join(outDir, file), JSON.stringify(document));
    written += 1;
  }
}
process.stdout.write(`${written} schemas in ${outDir}\n`);
