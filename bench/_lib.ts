/**
 * Helpers shared by the benchmarks (bench/run.mjs does not list files that start with `_`).
 */

/**
 * An integer setting from the environment, or `fallback` when it is not set.
 * @param name - the environment variable
 * @param fallback - the default
 * @param max - the largest accepted value
 * @param min - the smallest accepted value
 * @returns the value
 * @throws Error when the variable is set to anything but an integer in `min..max`
 */
export function intEnv(name: string, fallback: number, max: number, min = 1): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new Error(`${name} must be an integer in ${min}..${max}`);
  return value;
}

/**
 * The median of the rounds: the middle value, or the upper of the two middle values for an even count.
 * @param xs - the figures, at least one
 */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
