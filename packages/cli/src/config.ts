/**
 * Where the command line finds the systems: flags, then environment variables, then a JSON config file (the first
 * that names a setting wins).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/** The settings, from any source. */
export const cliConfigSchema = z.strictObject({
  /** The CDSS reference server, e.g. `http://127.0.0.1:8080`. */
  server: z.url().optional(),
  /** An access token for the server (its `Authorization: Bearer`). */
  token: z.string().min(1).optional(),
  /** Orthanc (or the sandbox's DICOM store), credentials in the URL: `http://user:pass@127.0.0.1:8042`. */
  orthanc: z.url().optional(),
});
/** The settings. */
export type CliConfig = z.infer<typeof cliConfigSchema>;

/** Environment variables read, and the setting each gives. */
export const CONFIG_ENV = { server: 'CDSS_SERVER_URL', token: 'CDSS_TOKEN', orthanc: 'CDSS_ORTHANC_URL' } as const;

/** A bad configuration (exit code 3). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Merges the sources.
 * @param flags - `--server`, `--token`, `--orthanc`, `--config`
 * @param env - the environment (`CDSS_CONFIG` names the file; default `./cdss.config.json` when it exists)
 * @param cwd - where a relative config path is resolved
 * @returns the settings
 * @throws {@link ConfigError} for an unreadable file or an invalid value (naming its source)
 */
export function loadCliConfig(
  flags: Partial<Record<keyof CliConfig | 'config', string | undefined>>,
  env: Record<string, string | undefined>,
  cwd: string,
): CliConfig {
  const named = flags.config ?? env['CDSS_CONFIG'];
  const path = resolve(cwd, named ?? 'cdss.config.json');
  let file: Record<string, unknown> = {};
  if (named !== undefined || existsSync(path)) {
    try {
      file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new ConfigError(`cannot read the config file ${path}: ${(error as Error).message}`);
    }
    const parsed = cliConfigSchema.safeParse(file);
    if (!parsed.success) throw new ConfigError(`config file ${path}: ${z.prettifyError(parsed.error)}`);
  }
  const merged: Record<string, unknown> = {};
  for (const key of Object.keys(CONFIG_ENV) as Array<keyof CliConfig>) {
    const value = flags[key] ?? env[CONFIG_ENV[key]] ?? file[key];
    if (value !== undefined) merged[key] = value;
  }
  const parsed = cliConfigSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
