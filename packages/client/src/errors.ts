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
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CdssApiError';
  }
}
