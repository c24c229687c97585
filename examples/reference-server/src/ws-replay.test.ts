/**
 * Live updates that survive reconnects: the replay log numbers events per topic (memory, and MySQL on the real
 * MariaDB), and a client of `@cdss/client` that loses its WebSocket during an analysis gets every event once.
 */
import { createPool, type Pool } from 'mysql2/promise';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEvents, type ServerEvent, type WebSocketLike } from '@cdss/client';
import { requireService } from '@cdss/core/testing';
import {
  createLocalEventBus,
  createMemoryEventLog,
  createMySqlEventLog,
  withReplayLog,
  type EventLog,
} from './events.js';
import { startHarness, type Harness } from './test-support.js';

const mariadb = await requireService('mariadb');

const progress = (analysisId: string, percent: number, patientId = 'p1'): ServerEvent => ({
  type: 'analysis.progress',
  patientId,
  analysisId,
  data: { percent },
  time: new Date().toISOString(),
});

function eventLogContract(name: string, open: (keepPerTopic: number) => Promise<EventLog>): void {
  describe(`event log: ${name}`, () => {
    it('numbers each topic consecutively and replays what came after `since`', async () => {
      const log = await open(50);
      const suffix = Math.random().toString(36).slice(2);
      const a = await log.append(progress(`a-${suffix}`, 10, `p-${suffix}`));
      const b = await log.append(progress(`b-${suffix}`, 20, `p-${suffix}`));
      const c = await log.append(progress(`a-${suffix}`, 30, `p-${suffix}`));
      expect(a.seqs).toEqual({ [`patient:p-${suffix}`]: 1, [`analysis:a-${suffix}`]: 1 });
      expect(b.seqs).toEqual({ [`patient:p-${suffix}`]: 2, [`analysis:b-${suffix}`]: 1 });
      expect(c.seqs).toEqual({ [`patient:p-${suffix}`]: 3, [`analysis:a-${suffix}`]: 2 });
      expect(new Set([a.id, b.id, c.id]).size).toBe(3);
      const replay = await log.since(`analysis:a-${suffix}`, 1);
      expect(replay).toMatchObject({ latest: 2, complete: true });
      expect(replay.events.map((e) => e.id)).toEqual([c.id]);
      expect((await log.since(`patient:p-${suffix}`, 0)).events.map((e) => e.id)).toEqual([a.id, b.id, c.id]);
      expect(await log.since(`analysis:none-${suffix}`, 0)).toMatchObject({ events: [], latest: 0, complete: true });
      await log.close();
    });

    it('says when it can no longer replay (trimmed), and keeps numbering', async () => {
      const log = await open(3);
      const suffix = Math.random().toString(36).slice(2);
      for (let i = 1; i <= 5; i++) await log.append(progress(`t-${suffix}`, i * 10, `q-${suffix}`));
      const replay = await log.since(`analysis:t-${suffix}`, 1);
      expect(replay.complete).toBe(false);
      expect(replay.latest).toBe(5);
      const recent = await log.since(`analysis:t-${suffix}`, 3);
      expect(recent.complete).toBe(true);
      expect(recent.events.map((e) => e.seqs?.[`analysis:t-${suffix}`])).toEqual([4, 5]);
      await log.close();
    });
  });
}

eventLogContract('memory', async (keep) => createMemoryEventLog({ maxEvents: keep }));

describe('withReplayLog', () => {
  it("publishes a patient's events in the order they were raised, however the appends finish", async () => {
    const memory = createMemoryEventLog();
    // Appends finish in reverse order of their calls, as concurrent transactions on a shared log may.
    let delay = 60;
    const slowFirst: EventLog = {
      ...memory,
      append: async (event) => {
        await new Promise((resolve) => setTimeout(resolve, (delay -= 20)));
        return memory.append(event);
      },
    };
    const bus = withReplayLog(createLocalEventBus(), slowFirst);
    const seen: ServerEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    await Promise.all([10, 20, 25].map((percent) => bus.publish(progress('ordered', percent))));
    expect(seen.map((e) => e.data['percent'])).toEqual([10, 20, 25]);
    expect(seen.map((e) => e.seqs?.['analysis:ordered'])).toEqual([1, 2, 3]);
  });

  it('a failed append fails its own publish only', async () => {
    const memory = createMemoryEventLog();
    const failing: EventLog = {
      ...memory,
      append: async (event) => {
        if (event.data['percent'] === 20) throw new Error('log down');
        return memory.append(event);
      },
    };
    const bus = withReplayLog(createLocalEventBus(), failing);
    const seen: ServerEvent[] = [];
    bus.subscribe((event) => seen.push(event));
    const results = await Promise.allSettled([10, 20, 30].map((percent) => bus.publish(progress('f', percent))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(seen.map((e) => e.data['percent'])).toEqual([10, 30]);
  });
});

describe.skipIf(!mariadb.available)('on the real MariaDB', () => {
  let pools: Pool[] = [];
  const prefix = `t_ws_${process.pid}_${Date.now().toString(36)}`;
  beforeAll(() => {
    pools = [0, 1].map(() => createPool({ uri: mariadb.url, connectionLimit: 4 }));
  });
  afterAll(async () => {
    for (const suffix of ['', '_a', '_b'])
      for (const table of ['topics', 'events'])
        await pools[0]?.query(`DROP TABLE IF EXISTS ${prefix}${suffix}_${table}`).catch(() => undefined);
    await Promise.all(pools.map((p) => p.end()));
  });

  eventLogContract('MySQL', async (keep) =>
    createMySqlEventLog({ pool: pools[0]!, prefix: `${prefix}${keep === 3 ? '_a' : ''}`, keepPerTopic: keep }),
  );

  it('two server instances appending to one topic at once never share or skip a number', async () => {
    const [one, two] = await Promise.all(
      pools.map((pool) => createMySqlEventLog({ pool, prefix: `${prefix}_b`, keepPerTopic: 100 })),
    );
    const appended = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one! : two!).append(progress('shared', i, 'shared-patient'))),
    );
    const numbers = appended.map((e) => e.seqs?.['analysis:shared']).sort((x, y) => (x ?? 0) - (y ?? 0));
    expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe('WebSocket reconnect during an analysis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(() => []);
  });
  afterAll(async () => h.close());

  it('delivers every event once across a lost connection, and from the start for a deep link', async () => {
    const token = await h.token('demo-physician');
    const sockets: WebSocket[] = [];
    const received: ServerEvent[] = [];
    const statuses: string[] = [];
    class TrackedSocket extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
      }
    }
    const until = async (check: () => boolean): Promise<void> => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
      expect(check()).toBe(true);
    };
    // An event from before the page opened: a deep link subscribes `fromStart` and still gets it.
    await h.bus.publish(progress('an-1', 1));
    const stream = connectEvents({
      baseUrl: h.baseUrl,
      getToken: () => token,
      WebSocket: TrackedSocket as unknown as new (url: string) => WebSocketLike,
      reconnectDelayMs: 50,
      onEvent: (event) => received.push(event),
      onStatus: (status) => statuses.push(status),
    });
    // Subscribed before the socket is ready: it is sent after `ready`.
    stream.subscribe('analysis:an-1', { fromStart: true });
    await until(() => received.length === 1);
    for (const percent of [10, 20]) await h.bus.publish(progress('an-1', percent));
    await until(() => received.length === 3);

    // The connection drops; the analysis goes on meanwhile.
    sockets[0]!.terminate();
    await until(() => statuses.at(-1) === 'closed');
    for (const percent of [30, 40, 50]) await h.bus.publish(progress('an-1', percent));
    await h.bus.publish({
      type: 'analysis.completed',
      patientId: 'p1',
      analysisId: 'an-1',
      data: {},
      time: new Date().toISOString(),
    });
    await until(() => received.length === 7);
    // And a live one after the reconnect.
    await h.bus.publish(progress('an-1', 100));
    await until(() => received.length === 8);
    await new Promise((r) => setTimeout(r, 100));
    stream.close();

    expect(sockets.length).toBeGreaterThanOrEqual(2);
    expect(received.map((e) => e.seqs?.['analysis:an-1'])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(received.map((e) => (e.type === 'analysis.completed' ? 'done' : e.data['percent']))).toEqual([
      1,
      10,
      20,
      30,
      40,
      50,
      'done',
      100,
    ]);
    expect(new Set(received.map((e) => e.id)).size).toBe(8);
  });

  it('tells the client to re-read when the log cannot replay what it missed', async () => {
    const small = await startHarness(() => []);
    try {
      const token = await small.token('demo-physician');
      const resyncs: string[] = [];
      const sockets: WebSocket[] = [];
      class TrackedSocket extends WebSocket {
        constructor(url: string) {
          super(url);
          sockets.push(this);
        }
      }
      const stream = connectEvents({
        baseUrl: small.baseUrl,
        getToken: () => token,
        WebSocket: TrackedSocket as unknown as new (url: string) => WebSocketLike,
        reconnectDelayMs: 50,
        onEvent: () => undefined,
        onResync: (topic) => resyncs.push(topic),
      });
      stream.subscribe('analysis:an-2');
      for (let i = 0; i < 100 && sockets.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      sockets[0]!.terminate();
      // More events than the harness log keeps (10 000) while away.
      for (let i = 0; i < 10_050; i++) await small.bus.publish(progress('an-2', i % 100));
      for (let i = 0; i < 200 && resyncs.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      stream.close();
      expect(resyncs).toEqual(['analysis:an-2']);
    } finally {
      await small.close();
    }
  });
});
