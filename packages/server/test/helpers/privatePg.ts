/**
 * A throwaway PostgreSQL server of the test's own: `initdb` in a temp dir,
 * started with `pg_ctl` on a port outside the kernel's ephemeral range (so no
 * `listen(0)` elsewhere can take it while the server is stopped), trust auth,
 * no fsync. A test may stop and start it at will (the outage test crashes it
 * with `-m immediate`) without touching the machine's shared PostgreSQL.
 *
 * PostgreSQL refuses to run as root: as root, every command runs as the
 * `postgres` user through `runuser -u postgres --`; otherwise as the current
 * user. The binaries are found on the PATH or in /usr/lib/postgresql/<v>/bin.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** Stops the server; `immediate` is a crash as far as clients can tell. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** True when a connection and `SELECT 1` succeed. */
  isUp(): Promise<boolean>;
  /** Stops it (if running) and removes its files. Safe to call twice. */
  destroy(): Promise<void>;
}

/** The folder holding `initdb` and `pg_ctl`, or undefined when PostgreSQL's server binaries are not installed. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** True when 127.0.0.1:`port` can be bound right now. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** Creates, starts and hands back a private PostgreSQL server. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found on the PATH or in /usr/lib/postgresql/*/bin');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'errand-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  const as = async (tool: string, args: string[], timeoutMs = 120_000) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    return run(cmd, argv, { timeout: timeoutMs, cwd: dir });
  };
  const logTail = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '(no server log)');

  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  let destroyed = false;
  try {
    await as('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  let port = 0;
  const startOn = (p: number) =>
    as(
      'pg_ctl',
      [
        '-D',
        data,
        '-l',
        logFile,
        '-w',
        '-t',
        '120',
        '-o',
        `-p ${p} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
        'start',
      ],
      180_000,
    );

  // A port below the ephemeral range that is free now; another one if the server could not bind it after all.
  let lastError: unknown;
  for (let tryNo = 0; tryNo < 5 && port === 0; tryNo++) {
    const candidate = 20_000 + ((process.pid * 7919 + Date.now() + tryNo * 1237) % 12_000);
    if (!(await canBind(candidate))) continue;
    try {
      await startOn(candidate);
      port = candidate;
    } catch (err) {
      lastError = err;
    }
  }
  if (port === 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a private PostgreSQL: ${(lastError as Error | undefined)?.message ?? 'no free port'}\n${logTail()}`);
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const running = async () => {
    try {
      await as('pg_ctl', ['-D', data, 'status'], 30_000);
      return true;
    } catch {
      return false;
    }
  };
  return {
    url,
    port,
    async stop(mode = 'fast') {
      await as('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '120', 'stop'], 180_000);
    },
    async start() {
      try {
        await startOn(port);
      } catch (err) {
        throw new Error(`could not restart the private PostgreSQL on port ${port}: ${(err as Error).message}\n${logTail()}`, {
          cause: err,
        });
      }
    },
    async isUp() {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (await running()) await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], 60_000).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
