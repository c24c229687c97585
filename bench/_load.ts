/**
 * The HTTP load client shared by the server benchmarks: autocannon in a child process (so its CPU is not the
 * server's), keeping N requests in flight on keep-alive connections for a given time.
 * (bench/run.mjs does not list files that start with `_`.)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

/** A target of the load. */
export interface Target {
  url: string;
  headers: Record<string, string>;
}

/** What the client is asked to do for one round. */
interface LoadRequest extends Target {
  connections: number;
  ms: number;
}

/** One round's figures, as the client saw them. */
export interface Round {
  /** 2xx answers per second. */
  rps: number;
  /** Median and 99th percentile latency, ms (autocannon's histogram, whole ms). */
  p50: number;
  p99: number;
  /** Client CPU (user + system) per request, µs. */
  clientCpuUs: number;
  /** 2xx answers. */
  ok: number;
  /** Requests answered with anything but 2xx, or failed, or timed out. */
  bad: number;
  /** Requests completed. */
  total: number;
}

/** Client mode: the forked child runs autocannon for each round it is sent and answers with its figures. */
function client(): void {
  process.on('message', (message: LoadRequest) => {
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    autocannon(
      { url: message.url, headers: message.headers, connections: message.connections, duration: message.ms / 1000 },
      (error, result) => {
        if (error) {
          process.send?.({ error: error.message });
          return;
        }
        const elapsedS = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const total = result.requests.total;
        process.send?.({
          rps: result['2xx'] / elapsedS,
          p50: result.latency.p50,
          p99: result.latency.p99,
          clientCpuUs: (cpu.user + cpu.system) / Math.max(total, 1),
          ok: result['2xx'],
          bad: result.non2xx + result.errors + result.timeouts,
          total,
        } satisfies Round);
      },
    );
  });
  process.send?.({ ready: true });
}

/** The parent's handle on the client process. */
export interface LoadClient {
  /** Runs one round against `target`; `cpu` is sampled around it and its difference reported per request. */
  run(target: Target, connections: number, ms: number): Promise<Round>;
  close(): void;
}

/** Starts the client process. */
export async function startLoadClient(): Promise<LoadClient> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['client'], {
    // The client must not write CPU profiles of its own when the parent is profiled.
    execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof')),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((ok, fail) => {
    child.once('message', () => ok());
    child.once('exit', (code) => fail(new Error(`load client exited with ${code}`)));
  });
  return {
    run(target, connections, ms) {
      return new Promise((ok, fail) => {
        child.once('message', (answer: Round & { error?: string }) => {
          if (answer.error) fail(new Error(answer.error));
          else ok(answer);
        });
        child.send({ ...target, connections, ms } satisfies LoadRequest);
      });
    },
    close() {
      child.kill();
    },
  };
}

/**
 * CPU time (user + system, µs) used so far by processes: this one's own (`'self'`) or others' by pid, including
 * their children's that have been reaped, from /proc (Linux).
 */
export function cpuMicros(pids: readonly number[] | 'self'): number {
  if (pids === 'self') {
    const cpu = process.cpuUsage();
    return cpu.user + cpu.system;
  }
  const ticksPerSecond = 100; // USER_HZ on Linux
  let ticks = 0;
  for (const pid of pids) {
    // Fields after the command name (which may hold spaces): state is field 3; utime, stime are 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1e6) / ticksPerSecond;
}

/** The pids of a process and its children (one level: a cluster's primary and its workers). */
export function withChildren(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return [pid, ...(children ? children.split(/\s+/).map(Number) : [])];
}

/** GET/POST JSON, failing on a non-2xx status. */
export async function json(url: string, init?: RequestInit): Promise<unknown> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${new URL(url).pathname} answered ${response.status}`);
  return response.json();
}

/** A line that formats a round. */
export const formatRound = (r: Round, serverCpuUs?: number): string =>
  `${Math.round(r.rps)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, CPU/req client ${r.clientCpuUs.toFixed(0)} µs` +
  (serverCpuUs === undefined ? '' : ` server ${serverCpuUs.toFixed(0)} µs`);

if (process.argv[2] === 'client') client();
