/**
 * The client's error: the server answered with an error status (its body is a FHIR OperationOutcome), or did not
 * answer at all (`status` 0).
 */
export class CdssApiError extends Error {
  constructor(
    /** HTTP status; 0 when the request never got an answer. */
    readonly status: number,
    message: string,
    /** The OperationOutcome's issues, when the server sent one. */
    readonly issues: ReadonlyArray<{
      severity?: string;
      code?: string;
      diagnostics?: string;
      expression?: string[];
    }> = [],
    options?: { cause?: unknown; contained?: ReadonlyArray<Record<string, unknown>> },
  ) {
    super(message, options);
    this.name = 'CdssApiError';
    this.contained = options?.contained ?? [];
  }

  /** FHIR resources the OperationOutcome carried in `contained` (e.g. the candidates of a 409 duplicate). */
  readonly contained: ReadonlyArray<Record<string, unknown>>;
}

/** An existing patient the server named when it refused a create as a suspected duplicate. */
export interface DuplicateCandidate {
  /** The patient's id (OpenEMR uuid). */
  id: string;
  /** The record number. */
  pid?: string;
  givenName?: string;
  familyName?: string;
  birthDate?: string;
  sex?: string;
}

/**
 * The candidates of a suspected duplicate patient (409 `duplicate`); empty for any other error.
 * @param error - what `patients.create` threw
 */
export function duplicateCandidates(error: unknown): DuplicateCandidate[] {
  if (!(error instanceof CdssApiError) || error.status !== 409 || !error.issues.some((i) => i.code === 'duplicate'))
    return [];
  return error.contained
    .filter((r) => r['resourceType'] === 'Patient' && typeof r['id'] === 'string')
    .map((r) => {
      const name = (r['name'] as Array<{ family?: string; given?: string[] }> | undefined)?.[0];
      const pid = (r['identifier'] as Array<{ value?: string }> | undefined)?.[0]?.value;
      return {
        id: r['id'] as string,
        ...(pid ? { pid } : {}),
        ...(name?.given?.[0] ? { givenName: name.given[0] } : {}),
        ...(name?.family ? { familyName: name.family } : {}),
        ...(typeof r['birthDate'] === 'string' ? { birthDate: r['birthDate'] } : {}),
        ...(typeof r['gender'] === 'string' ? { sex: r['gender'] } : {}),
      };
    });
}
