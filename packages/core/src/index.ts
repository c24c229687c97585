export { CdssError, HttpError, ValidationError, TimeoutError, RetryError, kindOf } from './errors.js';
export type { HttpErrorOptions, ValidationIssue } from './errors.js';
export { systemClock } from './clock.js';
export type { Clock } from './clock.js';
export {
  noopLogger,
  redact,
  createRedactingLogger,
  scrubString,
  isRedactedKey,
  REDACTED,
  REDACTED_KEYS,
} from './logger.js';
export type { Logger, RedactingLogger } from './logger.js';
export { bearerAuth, basicAuth, oauth2Auth } from './auth.js';
export type { AuthStrategy, AuthRequest, OAuth2Token, TokenProvider, OAuth2AuthOptions } from './auth.js';
export {
  CLIENT_ASSERTION_ALGORITHMS,
  createSmartBackendServicesTokenProvider,
  signClientAssertion,
} from './backend-services.js';
export type {
  AssertionPrivateKey,
  ClientAssertionAlgorithm,
  ClientAssertionInput,
  ClientAssertionKey,
  SmartBackendServicesOptions,
} from './backend-services.js';
export { createRetryPolicy, parseRetryAfter, isRetrySafe } from './retry.js';
export type { RetryPolicy, RetryPolicyOptions, RetryContext } from './retry.js';
export { HttpTransport } from './transport.js';
export type {
  HttpTransportOptions,
  RequestOptions,
  HttpResponse,
  HttpMethod,
  ResponseType,
  QueryValue,
  TransferProgress,
  TransportHooks,
  RequestContext,
  ResponseContext,
  ErrorContext,
} from './transport.js';
