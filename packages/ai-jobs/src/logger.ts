/**
 * The logger shape this package writes to: structurally the same as `@cdss/core`'s `Logger`, so a pino logger or
 * core's redacting logger can be passed in. Log objects here never carry message bodies (PHI) or credentials.
 * @packageDocumentation
 */
import { noopLogger } from '@cdss/core';

/** A structured logger (pino-compatible). */
export interface JobLogger {
  /** Detail for debugging (e.g. a publish sent again after a reconnect). */
  debug(obj: object | string, msg?: string): void;
  /** Normal operation (connected, retrying a job). */
  info(obj: object | string, msg?: string): void;
  /** Something went wrong and was handled (connection lost, message dead-lettered). */
  warn(obj: object | string, msg?: string): void;
  /** Something went wrong that needs a person. */
  error(obj: object | string, msg?: string): void;
}

/** A logger that drops everything: the default (`@cdss/core`'s `noopLogger`). */
export const silentLogger: JobLogger = noopLogger;

/** Strips credentials from an AMQP or MySQL URL for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

/** A short, PHI-free description of an error for logs. */
export function errorSummary(error: unknown): { name: string; message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' || typeof code === 'number'
      ? { name: error.name, message: error.message.slice(0, 300), code: String(code) }
      : { name: error.name, message: error.message.slice(0, 300) };
  }
  return { name: 'unknown', message: String(error).slice(0, 300) };
}
