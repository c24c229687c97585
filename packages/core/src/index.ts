export { CdssError, HttpError, ValidationError, TimeoutError, RetryError, kindOf } from './errors.js';
export type { HttpErrorOptions, ValidationIssue } from './errors.js';
