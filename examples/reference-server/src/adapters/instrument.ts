/**
 * Upstream metrics for a port: every async method's latency by operation and outcome, and a count of failures, so
 * the "upstream failing" alerts and the upstreams dashboard see each system (openemr, orthanc, fhir, cache).
 */
import type { ServerMetrics } from '../metrics.js';

/**
 * Wraps a port so each call is measured.
 * @param port - the adapter
 * @param name - the port's label (`openemr`, `orthanc`, `fhir`, `cache`)
 * @param metrics - the server's metrics
 */
export function instrument<T extends object>(port: T, name: string, metrics: ServerMetrics): T {
  return new Proxy(port, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        const end = metrics.upstreamDuration.startTimer({ port: name, operation: property });
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          end({ outcome: 'error' });
          metrics.upstreamErrors.inc({ port: name });
          throw error;
        }
        if (!(result instanceof Promise)) {
          end({ outcome: 'success' });
          return result;
        }
        return result.then(
          (resolved: unknown) => {
            end({ outcome: 'success' });
            return resolved;
          },
          (error: unknown) => {
            end({ outcome: 'error' });
            metrics.upstreamErrors.inc({ port: name });
            throw error;
          },
        );
      };
    },
  });
}
