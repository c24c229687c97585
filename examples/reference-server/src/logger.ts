/**
 * pino logs with request ids and PHI redaction: every log object passes through `@cdss/core`'s `redact`, every
 * message string through `scrubString` (bearer tokens, JWTs, URL credentials).
 */
import { redact, scrubString } from '@cdss/core';
import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Creates the server's logger.
 * @param level - pino level
 * @param destination - where lines go (stdout by default)
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'cdss-reference-server' },
      formatters: { log: (object) => redact(object) },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubString(arg) : arg)) as Parameters<
            typeof method
          >;
          return method.apply(this, scrubbed);
        },
      },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
