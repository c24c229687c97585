/** Loading state of an API call, with its error and a reload. */
import { CdssApiError } from '@cdss/client';
import { useCallback, useEffect, useState, type DependencyList } from 'react';

/** The state of an async load. */
export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  loading: boolean;
  reload(): void;
}

/**
 * Describes an error for the user without echoing data back (messages of the client name only the route).
 * @param error - what was thrown
 */
export function describeError(error: unknown): string {
  if (error instanceof CdssApiError) {
    if (error.status === 0) return 'The server could not be reached. Check your connection and try again.';
    if (error.status === 403) return 'Your role is not allowed to do this.';
    if (error.status === 404) return 'Not found.';
    const detail = error.issues
      .map((issue) => issue.diagnostics)
      .filter(Boolean)
      .join('; ');
    return `The server answered ${error.status}${detail ? `: ${detail}` : ''}.`;
  }
  return 'Something went wrong.';
}

/**
 * Runs `load` when the dependencies change.
 * @param load - the API call
 * @param deps - when to run it again
 */
export function useLoad<T>(load: () => Promise<T>, deps: DependencyList): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    setState((old) => ({ ...old, loading: true, error: undefined }));
    load().then(
      (data) => current && setState({ data, error: undefined, loading: false }),
      // A failed reload keeps what was on screen, with the error beside it.
      (error: unknown) =>
        current && setState((old) => ({ data: old.data, error: describeError(error), loading: false })),
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}
