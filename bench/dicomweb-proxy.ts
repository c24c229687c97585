/**
 * WADO-RS series retrieve through the reference server's `/dicomweb` proxy vs straight from the real Orthanc, same run.
 *
 * Needs the real Orthanc (`npm run services -- start orthanc`; URL from CDSS_TEST_ORTHANC_URL or the default). One
 * synthetic series (155 slices of 240×240 uint16, 17.9 MB of pixels, Part-10 files of the phantom generator) is
 * uploaded under a PatientID of its own. The reference server is composed in this process as `npm start` composes it
 * (sandbox mode: embedded OpenEMR emulator and FHIR server, file audit store in a temporary CDSS_DATA_DIR) but with
 * ORTHANC_URL pointing at the real Orthanc, CDSS_WORKER=off and no seeded studies; a physician token comes from
 * POST /api/sandbox/token. So every proxied request goes through the whole stack: request id, metrics, helmet, CORS,
 * JWT verification, rate limits, RBAC, parameter validation, the fail-closed audit record (with the patient looked
 * up once per study), then the streamed pipe of Orthanc's answer.
 *
 * The client on both sides is curl in a child process (so its CPU is not the proxy's), fetching
 * `GET …/studies/{study}/series/{series}` with `Accept: multipart/related; type="application/dicom"` to /dev/null:
 * `direct` with Orthanc's Basic credentials at Orthanc, `proxy` with the bearer token at `/dicomweb`. Both answers are
 * checked first to be the same size and to hold the 155 files. Each curl is started by a small launcher process
 * (Node.js, started once), not by this process: forking this process (the whole server) before every request marked
 * its memory copy-on-write, and the server then paid the page faults while it relayed the next answer, a cost of the
 * harness that fell on the proxy side only. Then BENCH_ROUNDS rounds (default 15, max 31), each running the sides
 * in alternating order after an untimed warm-up of BENCH_WARMUP_ROUNDS rounds (default 20, every side alike; 2 until
 * 2026-12-07, which left V8 still compiling the proxy's path in the timed rounds); MB/s are pixel megabytes per
 * second, the median round is reported, with this process's CPU time per request on the proxy side less that on the direct side (the
 * server's own cost, less sensitive to a busy machine than the MB/s). The last line is the JSON result, `ratio` =
 * proxy / direct (target ≥ 0.8).
 *
 * A third side, for reference only, fetches the same URL as `direct` through a bare TCP relay in this process (the
 * proxy's way of reading, into reused buffers, and writing each read on at once; no HTTP parsing, no auth, no audit):
 * what one more process in the path costs on this machine by itself. Its ratio to `direct` is printed, and is the
 * JSON's `relay_ratio`; the gap between it and `ratio` is the proxy's own work.
 */
import { spawn } from 'node:child_process';
import { createServer as createTcpServer, connect as tcpConnect, type Server as TcpServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireService } from '@cdss/core/testing';
import { generatePhantom, writePhantomStudy } from '@cdss/dicom';
import { OrthancClient } from '@cdss/orthanc-client';
import { loadConfig } from '../examples/reference-server/src/config.js';
import { createLogger } from '../examples/reference-server/src/logger.js';
import { composeServer } from '../examples/reference-server/src/compose.js';
import { intEnv, median } from './_lib.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** The launcher: runs `curl` with the arguments of each JSON line on its stdin, answers a JSON line per run. */
const LAUNCHER = `
const { execFile } = require('node:child_process');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, args } = JSON.parse(line);
  execFile('curl', args, (error, stdout, stderr) => {
    const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
    process.stdout.write(JSON.stringify({ id, code, stdout, stderr: stderr.slice(0, 300) }) + '\\n');
  });
});`;

/**
 * A bare TCP relay to `host:port`: each read from the upstream, into a reused buffer, is written to the client at once.
 * The yardstick for the proxy's own cost (see the file's comment).
 */
function bareRelay(host: string, port: number): TcpServer {
  const spare: Buffer[] = [];
  return createTcpServer({ noDelay: true }, (client) => {
    const upstream = tcpConnect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: () => spare.pop() ?? Buffer.allocUnsafeSlow(256 * 1024),
        callback: (nread, buffer) => {
          const pooled = buffer as Buffer;
          if (client.write(pooled.subarray(0, nread), () => spare.push(pooled))) return true;
          client.once('drain', () => upstream.resume());
          return false;
        },
      },
    });
    client.on('data', (data: Buffer) => upstream.write(data));
    client.once('end', () => upstream.end());
    upstream.once('end', () => client.end());
    client.once('error', () => upstream.destroy());
    upstream.once('error', () => client.destroy());
  });
}

interface CurlResult {
  /** Seconds to the first byte and in all (curl's own timers). */
  firstByte: number;
  seconds: number;
  bytes: number;
}

/** Starts the launcher; `get` runs one curl GET to /dev/null through it. */
function curlLauncher(): { get(url: string, headers: string[]): Promise<CurlResult>; close(): void } {
  const child = spawn(process.execPath, ['-e', LAUNCHER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, { resolve(r: CurlResult): void; reject(e: Error): void }>();
  let nextId = 0;
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      const answer = JSON.parse(pending.slice(0, end)) as { id: number; code: number; stdout: string; stderr: string };
      pending = pending.slice(end + 1);
      const waiter = waiting.get(answer.id);
      waiting.delete(answer.id);
      if (answer.code !== 0) waiter?.reject(new Error(`curl exited ${answer.code}: ${answer.stderr}`));
      else {
        const [firstByte, seconds, bytes] = answer.stdout.trim().split(' ').map(Number);
        waiter?.resolve({ firstByte: firstByte ?? NaN, seconds: seconds ?? NaN, bytes: bytes ?? NaN });
      }
    }
  });
  child.once('exit', (code) => {
    for (const waiter of waiting.values()) waiter.reject(new Error(`the curl launcher exited ${code}`));
    waiting.clear();
  });
  return {
    get: (url, headers) =>
      new Promise((resolve, reject) => {
        const args = ['-sS', '--fail', '-o', '/dev/null', '-w', '%{time_starttransfer} %{time_total} %{size_download}'];
        for (const h of headers) args.push('-H', h);
        args.push(url);
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        child.stdin.write(`${JSON.stringify({ id, args })}\n`);
      }),
    close: () => void child.kill(),
  };
}

async function main(): Promise<void> {
  const svc = await requireService('orthanc', { ci: true });
  const rounds = intEnv('BENCH_ROUNDS', 15, 31);
  const warmupRounds = intEnv('BENCH_WARMUP_ROUNDS', 20, 100);
  const orthancUrl = new URL(svc.url);
  const username = decodeURIComponent(orthancUrl.username);
  const password = decodeURIComponent(orthancUrl.password);
  orthancUrl.username = '';
  orthancUrl.password = '';
  const orthancBase = orthancUrl.href.replace(/\/$/, '');
  const orthanc = new OrthancClient({ baseUrl: svc.url, concurrency: 4 });

  const patientId = `BENCH-DWP-${process.pid}-${Date.now().toString(36)}`;
  const dims: [number, number, number] = [240, 240, 155];
  const study = writePhantomStudy(generatePhantom({ seed: patientId, dims }), { patientId, uidSeed: patientId });
  const series = study.series.t1c;
  const pixelMB = (dims[0] * dims[1] * dims[2] * 2) / 1e6;
  const dataDir = await mkdtemp(join(tmpdir(), 'cdss-bench-dicomweb-'));
  const deletePatient = async (): Promise<void> => {
    for (const p of await orthanc.find({ level: 'Patient', query: { PatientID: patientId } }))
      await orthanc.delete('Patient', p.ID);
  };

  const config = loadConfig({
    CDSS_MODE: 'sandbox',
    CDSS_DATA_DIR: dataDir,
    CDSS_SANDBOX_STUDIES: '0',
    CDSS_WORKER: 'off',
    CDSS_LOG_LEVEL: 'warn',
    CDSS_RATE_LIMIT_PER_MINUTE: '100000',
    CDSS_SANDBOX_ALLOW_UPSTREAMS: 'true',
    ORTHANC_URL: orthancBase,
    ...(username ? { ORTHANC_USERNAME: username, ORTHANC_PASSWORD: password } : {}),
  });
  const composed = await composeServer(config, createLogger('warn'), 'bench');
  const curl = curlLauncher();
  const relay = bareRelay(orthancUrl.hostname, Number(orthancUrl.port || 80));
  try {
    const relayPort = await freePort();
    await new Promise<void>((resolve) => relay.listen(relayPort, '127.0.0.1', resolve));
    await orthanc.uploadInstances(series.files);
    const port = await composed.server.listen(await freePort(), '127.0.0.1');
    const server = `http://127.0.0.1:${port}`;
    const token = (await (
      await fetch(`${server}/api/sandbox/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'demo-physician' }),
      })
    ).json()) as { access_token: string };
    const path = `/studies/${study.studyInstanceUid}/series/${series.seriesInstanceUid}`;
    const accept = 'Accept: multipart/related; type="application/dicom"';
    const basic = `Authorization: Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    const sides = {
      direct: () => curl.get(`${orthancBase}/dicom-web${path}`, [accept, basic]),
      relay: () => curl.get(`http://127.0.0.1:${relayPort}/dicom-web${path}`, [accept, basic]),
      proxy: () => curl.get(`${server}/dicomweb${path}`, [accept, `Authorization: Bearer ${token.access_token}`]),
    };

    // Same answer on both sides (sizes differ only by the multipart boundaries), and the whole series.
    const [direct, proxied] = [await sides.direct(), await sides.proxy()];
    const fileBytes = series.files.reduce((sum, f) => sum + f.length, 0);
    if (direct.bytes < fileBytes || Math.abs(direct.bytes - proxied.bytes) > 4_096)
      throw new Error(`answers differ: direct ${direct.bytes} B, proxy ${proxied.bytes} B, files ${fileBytes} B`);
    log(
      `series: ${series.files.length} files, ${(fileBytes / 1e6).toFixed(1)} MB; answers ${direct.bytes} / ${proxied.bytes} B`,
    );
    // Untimed warm-up, every side alike: a server runs for days, and until V8 has compiled the proxy's path its
    // retrieves cost it half as much CPU again (14–20 ms against 9–12 ms per retrieve after 2 and after 25 rounds,
    // docs/guides/benchmarks.md), which is start-up, not the proxy.
    for (let i = 0; i < warmupRounds; i++) for (const side of Object.values(sides)) await side();

    const mbps = { direct: [] as number[], relay: [] as number[], proxy: [] as number[] };
    const firstByteMs = { direct: [] as number[], relay: [] as number[], proxy: [] as number[] };
    // This process's CPU time while each side runs: on the direct side only asking the launcher and waiting, on the
    // proxy side that plus the whole server's work. The difference is the proxy's cost per request, which a busy
    // machine changes far less than it changes the wall-clock figures.
    const cpuMs = { direct: 0, relay: 0, proxy: 0 };
    for (let r = 0; r < rounds; r++) {
      const order = ['direct', 'relay', 'proxy'] as const;
      for (const side of r % 2 === 0 ? order : [...order].reverse()) {
        const cpu = process.cpuUsage();
        const { seconds, firstByte } = await sides[side]();
        const used = process.cpuUsage(cpu);
        cpuMs[side] += (used.user + used.system) / 1000;
        mbps[side].push(pixelMB / seconds);
        firstByteMs[side].push(firstByte * 1000);
      }
    }
    const list = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(', ');
    log(`MB/s proxy ${list(mbps.proxy)} | direct ${list(mbps.direct)} | bare relay ${list(mbps.relay)}`);
    log(`first byte, ms: proxy ${list(firstByteMs.proxy)} | direct ${list(firstByteMs.direct)}`);
    const relayRatio = median(mbps.relay) / median(mbps.direct);
    log(
      `bare TCP relay (reference): ${median(mbps.relay).toFixed(0)} MB/s, ${relayRatio.toFixed(3)} of direct; ` +
        `its CPU per request ${((cpuMs.relay - cpuMs.direct) / rounds).toFixed(1)} ms`,
    );
    const serverCpuMs = (cpuMs.proxy - cpuMs.direct) / rounds;
    log(
      `server CPU per request: ${serverCpuMs.toFixed(1)} ms (${((serverCpuMs / pixelMB) * 1000).toFixed(0)} µs per pixel MB; ` +
        `this process ${(cpuMs.proxy / rounds).toFixed(1)} ms on the proxy side, ${(cpuMs.direct / rounds).toFixed(1)} ms on the direct side)`,
    );
    const value = median(mbps.proxy);
    const baseline = median(mbps.direct);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'dicomweb-proxy',
        unit: 'MB/s',
        value: +value.toFixed(1),
        baseline: +baseline.toFixed(1),
        baseline_name: 'curl WADO-RS retrieve series straight from Orthanc',
        ratio: +(value / baseline).toFixed(3),
        relay_ratio: +relayRatio.toFixed(3),
      })}\n`,
    );
  } finally {
    curl.close();
    relay.close();
    await deletePatient().catch(() => undefined);
    await composed.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`dicomweb-proxy bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
