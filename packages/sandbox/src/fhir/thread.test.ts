import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '@cdss/core/testing';
import { startEmbeddedFhirServerThread, type EmbeddedFhirServerThread } from './thread.js';

const threads: EmbeddedFhirServerThread[] = [];
afterEach(async () => {
  for (const thread of threads.splice(0)) await thread.close();
});

describe('embedded FHIR server in a worker thread', () => {
  it('serves FHIR from the Worker: validates, creates, searches, runs batches; close stops it', async () => {
    const thread = await startEmbeddedFhirServerThread();
    threads.push(thread);
    const { url } = await thread.listen(await freePort());
    const json = { 'content-type': 'application/fhir+json' };
    const invalid = await fetch(`${url}/Patient`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ resourceType: 'Patient', birthDate: 'yesterday' }),
    });
    expect(invalid.status).toBe(400);
    const batch = await fetch(url, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({
        resourceType: 'Bundle',
        type: 'batch',
        entry: [1, 2, 3].map((n) => ({
          resource: { resourceType: 'Patient', identifier: [{ system: 'urn:thread', value: String(n) }] },
          request: { method: 'POST', url: 'Patient' },
        })),
      }),
    });
    expect(batch.status).toBe(200);
    const page = (await (await fetch(`${url}/Patient?_count=2`)).json()) as {
      total?: number;
      entry?: unknown[];
      link?: Array<{ relation: string }>;
    };
    expect(page.entry).toHaveLength(2);
    expect(page.link?.map((l) => l.relation)).toContain('next');

    await thread.close();
    await expect(fetch(`${url}/metadata`)).rejects.toThrow();
  });

  it.runIf(process.platform === 'linux')(
    'runs the Worker thread alone at the nice value asked for (Linux: per thread), the caller’s threads unchanged',
    async () => {
      // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value (fields counted after the name's ')').
      const niceValues = () =>
        new Map(
          readdirSync('/proc/self/task').map((tid) => {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
            return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])] as const;
          }),
        );
      const before = niceValues();
      const mine = getPriority();
      const thread = await startEmbeddedFhirServerThread({ nice: 12 });
      threads.push(thread);
      const after = niceValues();
      const added = [...after].filter(([tid]) => !before.has(tid)).map(([, nice]) => nice);
      expect(added).toContain(12);
      for (const [tid, nice] of before) if (after.has(tid)) expect(after.get(tid)).toBe(nice);
      expect(getPriority()).toBe(mine);
      const { url } = await thread.listen(await freePort());
      expect((await fetch(`${url}/metadata`)).status).toBe(200);
    },
  );

  it('keeps the listen error code (EADDRINUSE), and another port works afterwards', async () => {
    const thread = await startEmbeddedFhirServerThread();
    threads.push(thread);
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      await expect(thread.listen(port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    const { url, close } = await thread.listen(await freePort());
    expect((await fetch(`${url}/metadata`)).status).toBe(200);
    await close();
    await expect(fetch(`${url}/metadata`)).rejects.toThrow();
  });

  it('fails at start on bad options, and reports a later failure of the Worker', async () => {
    await expect(startEmbeddedFhirServerThread({ basePath: 'no-slash' })).rejects.toThrow(/basePath|Invalid/);
    const onError = vi.fn();
    const thread = await startEmbeddedFhirServerThread({ onError });
    threads.push(thread);
    await thread.listen(await freePort());
    // The Worker ends without being asked (as a crash would): the caller hears of it, later listens fail at once.
    await thread.worker.terminate();
    await vi.waitFor(() => expect(onError).toHaveBeenCalledOnce());
    expect(String(onError.mock.calls[0]?.[0])).toMatch(/exited with code 1/);
    await expect(thread.listen(await freePort())).rejects.toThrow(/thread failed/);
  });

  it('starts in a process run with V8 options on its command line (a Worker may not be given them)', async () => {
    const script = [
      `const { startEmbeddedFhirServerThread } = await import(${JSON.stringify(new URL('./thread.ts', import.meta.url).href)});`,
      'const thread = await startEmbeddedFhirServerThread();',
      `const { url } = await thread.listen(${await freePort()});`,
      'const res = await fetch(`${url}/metadata`);',
      'console.log(`status ${res.status}`);',
      'await thread.close();',
    ].join('\n');
    const run = spawnSync(
      process.execPath,
      ['--max-old-space-size=256', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.stderr).not.toMatch(/ERR_WORKER_INVALID_EXEC_ARGV/);
    expect(run.stdout).toContain('status 200');
  });
});
