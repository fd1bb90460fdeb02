/**
 * The engine's side of node sessions (engine/liveness.ts): registered before
 * the first claim, no claims while the session is down, claims again (woken)
 * when it is back, the session ended after the drain. The store is SQLite with
 * a scripted `nodeRegister`, so the session's ups and downs are the test's to
 * decide; the PostgreSQL session itself is tested in test/store/postgres-nodes.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { Request } from '../../src/model/index.js';
import { createServer } from '../../src/server.js';
import { openStore, type NodeRegistration, type Store } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { waitForEvent } from '../helpers/events.js';
import { T0, tempDir } from '../helpers/factories.js';

type OnChange = (held: boolean) => void;

/** A session the test turns on and off; records what the engine did with it. */
class ScriptedSession {
  held = false;
  onChange: OnChange | undefined;
  log: string[] = [];

  register = async (params: { owner: string; onChange: OnChange }): Promise<NodeRegistration> => {
    this.log.push('register');
    this.onChange = params.onChange;
    this.set(true);
    const isHeld = () => this.held;
    const stop = async () => {
      this.log.push('stop');
      this.held = false;
    };
    return {
      get held() {
        return isHeld();
      },
      stop,
    };
  };

  set(held: boolean): void {
    this.held = held;
    this.onChange?.(held);
  }
}

/** `base` with a `nodeRegister` capability added (everything else is the SQLite store's). */
function withSession(base: Store, session: ScriptedSession): Store {
  return new Proxy(base, {
    get(target, prop) {
      if (prop === 'nodeRegister') return session.register;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

test('no claims while the node session is down; claims again when it is back; ended after the drain', async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  writeFileSync(join(dir, 'echo.mjs'), 'export default { async run(input) { return input; } };');
  const config = loadConfig({
    baseDir: dir,
    env: {},
    overrides: {
      store: { url: `sqlite:${join(dir, 'errand.db')}` },
      logging: { level: 'silent' },
      engine: { poll_interval: 1, lease_duration: 30, heartbeat_interval: 10 },
      operations: { echo: { module: join(dir, 'echo.mjs') } },
    },
  });
  const session = new ScriptedSession();
  const store = withSession(await openStore({ url: config.store.url }), session);
  const clock = new ManualClock(T0);
  const server = await createServer({ config, log: pino({ level: 'silent' }), test: { clock, store } });
  let closed = false;
  t.after(async () => {
    if (!closed) await server.close(0);
  });
  const { engine } = server;
  assert.deepEqual(session.log, ['register'], 'registered at start');
  const submit = (input: unknown): Promise<Request> => engine.submit({ tenant: 'alpha', operation: 'echo', input, mode: 'async' });

  const first = waitForEvent(engine.events, 'request:completed');
  await submit({ n: 1 });
  assert.equal((await first).request.status, 'completed', 'registered: runs');

  session.set(false);
  const held = await submit({ n: 2 });
  // Several dispatcher polls pass (each a claim attempt on the clock): nothing is claimed.
  for (let i = 0; i < 5; i++) await clock.advance(1000);
  assert.equal((await store.requestGetById({ id: held.id }))?.status, 'pending', 'not claimed while the session is down');
  assert.equal(engine.runningCount, 0);

  const second = waitForEvent(engine.events, 'request:completed', ({ request }) => request.id === held.id);
  session.set(true);
  assert.equal((await second).request.attempt, 1, 'claimed once the session is back, without waiting for a poll');

  await server.close(0);
  closed = true;
  assert.deepEqual(session.log, ['register', 'stop'], 'the session is ended once, at close');
});
