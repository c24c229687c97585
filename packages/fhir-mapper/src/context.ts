/** Options shared by every mapper. */
import { z } from 'zod';
import type { Reference } from 'fhir/r4.js';
import { identifierSystems, type IdentifierSystems } from './systems.js';
import { parseInput } from './util.js';

/** Options of the mappers: one documented object, every field optional. */
export const mapperOptionsSchema = z.object({
  /** The OpenEMR site (multisite installs); it names the identifier systems. Default `default`. */
  site: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('default'),
  /**
   * UTC offset of the OpenEMR server's clock (`+01:00`). OpenEMR's standard API returns local
   * datetimes without a zone, and FHIR requires one on every time. Default `+00:00`.
   */
  utcOffset: z
    .string()
    .regex(/^[+-](0\d|1[0-4]):[0-5]\d$/)
    .default('+00:00'),
});

/** Options of the mappers. */
export type MapperOptions = z.input<typeof mapperOptionsSchema>;

/** Resolved mapper options. */
export interface MapperContext {
  readonly site: string;
  readonly utcOffset: string;
  readonly systems: IdentifierSystems;
}

/**
 * Resolves mapper options.
 * @throws `ValidationError` (`@cdss/core`) on a bad site name or offset
 */
export function mapperContext(options: MapperOptions = {}): MapperContext {
  const o = parseInput(mapperOptionsSchema, options, 'mapper options');
  return { site: o.site, utcOffset: o.utcOffset, systems: identifierSystems(o.site) };
}

/**
 * A logical reference to the patient by OpenEMR uuid: valid FHIR with no server lookup. Callers that
 * know the server's id (after upserting the patient) pass `subject: {reference: 'Patient/<id>'}`.
 */
export function patientLogicalReference(ctx: MapperContext, puuid: string): Reference {
  return { type: 'Patient', identifier: { system: ctx.systems.patientUuid, value: puuid } };
}
