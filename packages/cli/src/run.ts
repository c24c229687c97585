/**
 * The `cdss` command line (commander): `import`, `status`, `analyze`, `report`. {@link runCli} is the whole
 * program with its input and output passed in, so tests run it in process.
 */
import { writeFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { createCdssClient, type CdssClient } from '@cdss/client';
import { OrthancClient } from '@cdss/orthanc-client';
import { ConfigError, loadCliConfig, type CliConfig } from './config.js';
import { importFolder, type ImportSummary } from './import-folder.js';

/** Exit codes (also in the README). */
export const EXIT = {
  /** Everything worked. */
  ok: 0,
  /** The command ran and something failed: a file not stored, a system down, an analysis that failed. */
  failed: 1,
  /** Bad usage: unknown command or option, missing argument. */
  usage: 2,
  /** Bad or missing configuration (a URL, the config file, a token the command needs). */
  config: 3,
  /** A system could not be reached or refused the request. */
  unreachable: 4,
  /** The server does not offer what was asked (e.g. a report format it cannot export yet). */
  unsupported: 5,
} as const;

/** Where the program reads and writes. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
  cwd: string;
}

class CliFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const REPORT_FORMATS = ['fhir', 'pdf', 'seg', 'sr'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** A URL without its credentials, for output. */
const shown = (url: string): string => {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
};

/**
 * Runs the command line.
 * @param argv - the arguments after `node cdss` (e.g. `['import', './dicom', '--json']`)
 * @param io - streams, environment, working directory
 * @returns the exit code ({@link EXIT})
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const out = (text: string): void => void io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  const err = (text: string): void => void io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  const program = new Command('cdss')
    .description('CDSS command line: DICOM import, system status, analyses and reports')
    .option('--server <url>', 'CDSS reference server (env CDSS_SERVER_URL)')
    .option('--token <token>', 'access token for the server (env CDSS_TOKEN)')
    .option('--orthanc <url>', 'Orthanc, credentials in the URL (env CDSS_ORTHANC_URL)')
    .option('--config <file>', 'JSON config file (env CDSS_CONFIG; default ./cdss.config.json)')
    .option('--json', 'print one JSON object on stdout instead of text')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });

  const settings = (): { config: CliConfig; json: boolean } => {
    const flags = program.opts<{
      server?: string;
      token?: string;
      orthanc?: string;
      config?: string;
      json?: boolean;
    }>();
    return { config: loadCliConfig(flags, io.env, io.cwd), json: flags.json === true };
  };
  const orthancOf = (config: CliConfig): OrthancClient => {
    if (!config.orthanc) throw new ConfigError('no Orthanc configured: pass --orthanc <url> or set CDSS_ORTHANC_URL');
    return new OrthancClient({ baseUrl: config.orthanc });
  };
  const serverOf = (config: CliConfig): CdssClient => {
    if (!config.server) throw new ConfigError('no server configured: pass --server <url> or set CDSS_SERVER_URL');
    const token = config.token;
    return createCdssClient({ baseUrl: config.server, ...(token ? { getToken: () => token } : {}) });
  };
  let code: number = EXIT.ok;

  program
    .command('import')
    .description('upload every DICOM file under a folder to Orthanc; other files are skipped and listed')
    .argument('<folder>', 'folder to search (recursively)')
    .addOption(new Option('--concurrency <n>', 'uploads at a time').default(4).argParser(Number))
    .action(async (folder: string, options: { concurrency: number }) => {
      const { config, json } = settings();
      const orthanc = orthancOf(config);
      const bar =
        !json && io.stderr.isTTY
          ? new SingleBar({
              stream: io.stderr as NodeJS.WriteStream,
              format: 'importing [{bar}] {value}/{total} {file}',
              hideCursor: true,
            })
          : undefined;
      let started = false;
      const summary: ImportSummary = await importFolder(folder, orthanc, {
        concurrency: options.concurrency,
        onProgress: (p) => {
          if (!bar) return;
          if (!started) bar.start(p.total, 0, { file: '' });
          started = true;
          bar.update(p.done, { file: p.file });
        },
      }).finally(() => bar?.stop());
      if (json) out(JSON.stringify(summary));
      else {
        out(
          `imported ${summary.stored + summary.alreadyStored} of ${summary.files - summary.skipped.length} DICOM files ` +
            `from ${folder} (${summary.stored} new, ${summary.alreadyStored} already stored) into ${shown(config.orthanc!)}; ` +
            `${summary.studies.length} stud${summary.studies.length === 1 ? 'y' : 'ies'}`,
        );
        if (summary.skipped.length) {
          out(`skipped ${summary.skipped.length} non-DICOM file${summary.skipped.length === 1 ? '' : 's'}:`);
          for (const s of summary.skipped) out(`  ${s.file}: ${s.reason}`);
        }
        if (summary.failed.length) {
          out(`failed ${summary.failed.length}:`);
          for (const f of summary.failed) out(`  ${f.file}: ${f.error}`);
        }
      }
      if (summary.failed.length) code = EXIT.failed;
    });

  program
    .command('status')
    .description('check every configured system (the server’s /readyz, Orthanc)')
    .action(async () => {
      const { config, json } = settings();
      const checks: Array<{ name: string; url: string; ok: boolean; detail: string }> = [];
      if (config.server) {
        const url = `${config.server.replace(/\/$/, '')}/readyz`;
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
          const body = (await response.json().catch(() => ({}))) as { status?: string; checks?: object };
          checks.push({
            name: 'server',
            url: shown(config.server),
            ok: response.ok,
            detail: `${body.status ?? response.status}${body.checks ? ` ${JSON.stringify(body.checks)}` : ''}`,
          });
        } catch (error) {
          checks.push({ name: 'server', url: shown(config.server), ok: false, detail: (error as Error).message });
        }
      }
      if (config.orthanc) {
        try {
          const system = await orthancOf(config).getSystem();
          checks.push({ name: 'orthanc', url: shown(config.orthanc), ok: true, detail: `Orthanc ${system.Version}` });
        } catch (error) {
          checks.push({ name: 'orthanc', url: shown(config.orthanc), ok: false, detail: (error as Error).message });
        }
      }
      if (checks.length === 0) throw new ConfigError('nothing configured: pass --server and/or --orthanc');
      if (json) out(JSON.stringify({ ok: checks.every((c) => c.ok), checks }));
      else for (const c of checks) out(`${c.ok ? 'up  ' : 'DOWN'} ${c.name.padEnd(8)} ${c.url}  ${c.detail}`);
      if (!checks.every((c) => c.ok)) code = EXIT.failed;
    });

  program
    .command('analyze')
    .description('request an AI analysis of a study; with --follow, show its progress until it ends')
    .argument('<studyUid>', 'StudyInstanceUID')
    .requiredOption('--patient <id>', 'the patient the study belongs to')
    .option('--follow', 'follow the analysis until it ends')
    .addOption(new Option('--interval <ms>', 'poll interval with --follow').default(1000).argParser(Number))
    .action(async (studyUid: string, options: { patient: string; follow?: boolean; interval: number }) => {
      const { config, json } = settings();
      const cdss = serverOf(config);
      const accepted = await cdss.analyses.request(studyUid, { patientId: options.patient });
      if (!options.follow) {
        if (json) out(JSON.stringify(accepted));
        else out(`analysis ${accepted.id}: ${accepted.status}`);
        return;
      }
      let last = '';
      for (;;) {
        const analysis = await cdss.analyses.get(accepted.id);
        const line = `${analysis.status}${analysis.stage ? ` ${analysis.stage}` : ''}${analysis.percent !== undefined ? ` ${Math.round(analysis.percent)}%` : ''}`;
        if (!json && line !== last) err(`analysis ${analysis.id}: ${line}`);
        last = line;
        if (TERMINAL.has(analysis.status)) {
          if (json) out(JSON.stringify(analysis));
          else if (analysis.result?.conclusion) out(analysis.result.conclusion);
          if (analysis.status !== 'succeeded') code = EXIT.failed;
          return;
        }
        await new Promise((r) => setTimeout(r, options.interval));
      }
    });

  program
    .command('report')
    .description(
      'export an analysis: fhir (the FHIR Bundle), seg or sr (DICOM, from Orthanc), pdf (if the server offers it)',
    )
    .argument('<analysisId>', 'the analysis')
    .addOption(new Option('--format <format>', 'what to export').choices(REPORT_FORMATS).default('fhir'))
    .requiredOption('-o, --output <file>', 'where to write it')
    .action(async (analysisId: string, options: { format: ReportFormat; output: string }) => {
      const { config, json } = settings();
      const cdss = serverOf(config);
      let bytes: Uint8Array;
      if (options.format === 'fhir') {
        bytes = Buffer.from(JSON.stringify(await cdss.analyses.report(analysisId), null, 2));
      } else if (options.format === 'seg' || options.format === 'sr') {
        const analysis = await cdss.analyses.get(analysisId);
        const series = options.format === 'seg' ? analysis.result?.segSeriesUid : analysis.result?.srSeriesUid;
        const instance = options.format === 'seg' ? analysis.result?.segInstanceUid : analysis.result?.srInstanceUid;
        if (!series || !instance)
          throw new CliFailure(
            EXIT.unsupported,
            `analysis ${analysisId} (${analysis.status}) has no DICOM ${options.format.toUpperCase()} recorded`,
          );
        bytes = await orthancOf(config).dicomweb.retrieveInstance(analysis.studyUid, series, instance);
      } else {
        bytes = await pdfReport(config, analysisId);
      }
      await writeFile(options.output, bytes);
      if (json)
        out(JSON.stringify({ analysisId, format: options.format, output: options.output, bytes: bytes.length }));
      else out(`wrote ${options.format} report of ${analysisId} to ${options.output} (${bytes.length} bytes)`);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage; // --help and --version exit 0
    if (error instanceof ConfigError) {
      err(`cdss: ${error.message}`);
      return EXIT.config;
    }
    if (error instanceof CliFailure) {
      err(`cdss: ${error.message}`);
      return error.code;
    }
    const status = (error as { status?: number }).status;
    err(`cdss: ${(error as Error).message}`);
    return status === 0 || status === undefined ? EXIT.unreachable : EXIT.failed;
  }
}

/** The PDF report, if this server's OpenAPI document offers one (a GET under /api/analyses/{id} answering application/pdf). */
async function pdfReport(config: CliConfig, analysisId: string): Promise<Uint8Array> {
  const base = config.server!.replace(/\/$/, '');
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
    paths?: Record<string, { get?: { responses?: Record<string, { content?: Record<string, unknown> }> } }>;
  };
  const path = Object.entries(doc.paths ?? {}).find(
    ([p, op]) =>
      p.startsWith('/api/analyses/{id}') &&
      Object.values(op.get?.responses ?? {}).some((r) => r.content?.['application/pdf'] !== undefined),
  )?.[0];
  if (!path) throw new CliFailure(EXIT.unsupported, `the server at ${shown(base)} offers no PDF report yet`);
  const response = await fetch(`${base}${path.replace('{id}', encodeURIComponent(analysisId))}`, {
    headers: { accept: 'application/pdf', ...(config.token ? { authorization: `Bearer ${config.token}` } : {}) },
  });
  if (!response.ok) throw new CliFailure(EXIT.failed, `GET ${path}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}
