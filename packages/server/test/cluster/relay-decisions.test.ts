/**
 * The cluster relay's decisions, with notifications from a fake source (a
 * plain object implementing `listen`, no database, no payload format): what
 * wakes the dispatcher, what aborts a local handler, what wakes the webhook
 * deliverer, what is skipped as this node's own, and when it resyncs from the
 * event log. The engine is a real one on a SQLite file with a manual clock.
 * Against the real PostgreSQL LISTEN connection: relay.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { startCluster, type Cluster } from '../../src/cluster/index.js';
import type { Engine } from '../../src/engine/index.js';
import type { Request } from '../../src/model/index.js';
import type {
  EventNotification,
  ListenOptions,
  NotificationSource,
  NotificationSubscription,
  StoreNotification,
} from '../../src/store/index.js';
import { settle } from '../helpers/clock.js';
import { startEngine, type EngineHarness } from '../helpers/engine.js';
import { makeNewRequest } from '../helpers/factories.js';

const silent = pino({ level: 'silent' });
const FALLBACK_MS = 100;

/** A notification source driven by the test: it connects at once, and the test sends, drops and restores. */
class FakeSource implements NotificationSource {
  private options: ListenOptions | undefined;
  up = false;
  stopped = false;

  listen = (options: ListenOptions): Promise<NotificationSubscription> => {
    this.options = options;
    this.up = true;
    options.onConnected({ reconnected: false });
    const isUp = () => this.up;
    return Promise.resolve({
      get connected() {
        return isUp();
      },
      stats: { received: 0, invalid: 0, foreign: 0 },
      stop: () => {
        this.stopped = true;
        this.up = false;
        return Promise.resolve();
      },
    });
  };

  send(note: StoreNotification): void {
    assert.ok(this.options && !this.stopped, 'listening');
    this.options.onNotification(note);
  }

  drop(): void {
    this.up = false;
    this.options?.onDisconnected?.(new Error('connection lost'));
  }

  restore(): void {
    this.up = true;
    this.options?.onConnected({ reconnected: true });
  }
}

/** Counts the engine actions the relay takes (the real methods still run). */
function recordActions(engine: Engine) {
  const calls = { wake: 0, wakeWebhooks: 0, aborts: [] as Array<[string, string, boolean]> };
  const wake = engine.wake.bind(engine);
  const wakeWebhooks = engine.wakeWebhooks.bind(engine);
  const abortLocal = engine.abortLocal.bind(engine);
  engine.wake = () => {
    calls.wake += 1;
    wake();
  };
  engine.wakeWebhooks = () => {
    calls.wakeWebhooks += 1;
    wakeWebhooks();
  };
  engine.abortLocal = (id, cause) => {
    const aborted = abortLocal(id, cause);
    calls.aborts.push([id, cause, aborted]);
    return aborted;
  };
  return calls;
}

function event(request: Request, seq: number, node: string, overrides: Partial<EventNotification> = {}): EventNotification {
  return {
    kind: 'event',
    requestId: request.id,
    seq,
    type: 'status',
    status: request.status,
    operation: request.operation,
    node,
    ...overrides,
  };
}

describe('ClusterRelay decisions (fake notification source)', () => {
  let h: EngineHarness;
  let source: FakeSource;
  let cluster: Cluster;
  let calls: ReturnType<typeof recordActions>;

  before(async () => {
    h = await startEngine({
      hang: `export default { run: (input, ctx) => new Promise((resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) };`,
      echo: 'export default { run: (input) => input };',
    });
    calls = recordActions(h.server.engine);
    source = new FakeSource();
    cluster = await startCluster({ engine: h.server.engine, source, log: silent, fallbackMs: FALLBACK_MS });
  });

  after(async () => {
    await cluster.stop();
    await h.close();
  });

  beforeEach(() => {
    calls.wake = 0;
    calls.wakeWebhooks = 0;
    calls.aborts.length = 0;
  });

  /** A request another node wrote (straight into the store: this engine saw nothing); due in an hour, so nobody here claims it. */
  async function remoteInsert(): Promise<Request> {
    const runAt = h.clock.now() + 3_600_000;
    const { request } = await h.server.store.requestInsert({
      request: makeNewRequest({ operation: 'echo', created_at: h.clock.now(), run_at: runAt, deadline: runAt + 3_600_000 }),
    });
    return request;
  }

  test('subscribes with the engine clock as its timers, and stops the subscription on stop', () => {
    assert.equal(cluster.subscription.connected, true);
    assert.equal(source.stopped, false);
  });

  test("another node's pending status wakes the dispatcher; other statuses and progress do not", async () => {
    const request = await remoteInsert();
    source.send(event(request, 1, 'node-b'));
    assert.equal(calls.wake, 1);
    source.send(event(request, 2, 'node-b', { status: 'processing' }));
    source.send(event(request, 3, 'node-b', { type: 'progress', status: 'processing' }));
    source.send(event(request, 4, 'node-b', { status: 'completed' }));
    assert.equal(calls.wake, 1);
    assert.deepEqual(calls.aborts, []);
  });

  test('a pending status written by this node is skipped (its engine already acted)', async () => {
    const own = cluster.relay.stats.own;
    const request = await remoteInsert();
    source.send(event(request, 1, h.server.engine.nodeId));
    assert.equal(calls.wake, 0);
    assert.equal(cluster.relay.stats.own, own + 1);
  });

  test("another node's cancel aborts the handler running here; this node's own cancel is not acted on twice", async () => {
    const running = await h.server.engine.submit({ tenant: 'alpha', operation: 'hang', input: {}, mode: 'async' });
    for (let i = 0; i < 50 && h.server.engine.runningCount === 0; i++) await settle();
    assert.equal(h.server.engine.runningCount, 1, 'the handler runs here');

    source.send(event({ ...running, status: 'cancelled' }, 3, h.server.engine.nodeId));
    assert.deepEqual(calls.aborts, []);
    assert.equal(h.server.engine.runningCount, 1);

    source.send(event({ ...running, status: 'cancelled' }, 3, 'node-a'));
    assert.deepEqual(calls.aborts, [[running.id, 'cancelled', true]]);
    for (let i = 0; i < 50 && h.server.engine.runningCount > 0; i++) await settle();
    assert.equal(h.server.engine.runningCount, 0, 'the worker slot is free');
  });

  test("another node's due delivery wakes the webhook deliverer; this node's own does not", () => {
    source.send({ kind: 'delivery', node: 'node-b' });
    assert.equal(calls.wakeWebhooks, 1);
    source.send({ kind: 'delivery', node: h.server.engine.nodeId });
    assert.equal(calls.wakeWebhooks, 1);
    // A delivery whose writer is unknown wakes it too (a spare claim is harmless).
    source.send({ kind: 'delivery', node: '' });
    assert.equal(calls.wakeWebhooks, 2);
  });

  test('while disconnected it resyncs every fallback period; a reconnect resyncs once and stops the fallback', async () => {
    const request = await remoteInsert();
    const seen: number[] = [];
    const off = h.server.engine.events.onRequest(request.id, ({ event: e }) => seen.push(e.seq));
    try {
      const resyncs = cluster.relay.stats.resyncs;
      source.drop();
      assert.equal(cluster.relay.stats.resyncs, resyncs, 'no resync at the moment of the drop');
      await h.clock.advance(FALLBACK_MS);
      assert.equal(cluster.relay.stats.resyncs, resyncs + 1);
      assert.ok(calls.wake >= 1 && calls.wakeWebhooks >= 1, 'a resync wakes the dispatcher and the deliverer');
      // The subscriber gets what it missed (no notification was ever sent for it) from the log.
      assert.deepEqual(seen, [1]);
      await h.clock.advance(FALLBACK_MS);
      assert.equal(cluster.relay.stats.resyncs, resyncs + 2);

      // Committed while the connection is down: its notification is lost.
      const claimed = await h.server.store.requestClaim({ owner: 'node-b', now: request.run_at, leaseMs: 600_000, limit: 100 });
      assert.ok(claimed.some((c) => c.request.id === request.id));
      source.restore();
      await settle();
      assert.equal(cluster.relay.stats.resyncs, resyncs + 3);
      assert.deepEqual(seen, [1, 2], 'the reconnect read the missed entry, once');
      await h.clock.advance(FALLBACK_MS * 5);
      assert.equal(cluster.relay.stats.resyncs, resyncs + 3, 'no fallback resync once connected');
    } finally {
      off();
    }
  });

  test('the first connection does not resync (nothing can have been missed before it)', async () => {
    const other = new FakeSource();
    const second = await startCluster({ engine: h.server.engine, source: other, log: silent, fallbackMs: FALLBACK_MS });
    try {
      assert.equal(second.relay.stats.resyncs, 0);
      await h.clock.advance(FALLBACK_MS * 3);
      assert.equal(second.relay.stats.resyncs, 0);
    } finally {
      await second.stop();
    }
    assert.equal(other.stopped, true);
    assert.equal(second.subscription.connected, false);
  });
});
