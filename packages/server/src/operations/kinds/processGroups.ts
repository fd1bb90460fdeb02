/**
 * Process groups started by `command` operations, and how they end.
 *
 * Each program runs as the leader of its own process group (spawned detached),
 * so one signal to `-pgid` reaches it and everything it started. Stopping a
 * group is SIGTERM, then SIGKILL after the grace period; after that SIGKILL
 * the group id is forgotten and never signalled again.
 *
 * **The lifeline** (decision 0011): the program is started through
 * `/bin/sh -c GUARD`, which first forks a tiny guard into the same group and
 * then `exec`s the program (same pid, so the program leads the group). The
 * guard waits on fd 3, one end of a pipe whose other end only this process
 * holds (close-on-exec here). When Errand dies for any reason — SIGKILL and
 * the OOM killer included, where no exit hook runs — the kernel closes that
 * end, the guard's `read` returns and it runs `kill -9 0`: the whole group,
 * itself included, is killed within milliseconds. The guard ignores SIGTERM
 * and the other catchable signals a program may send its own group, so only
 * Errand's final SIGKILL (or its death) ends it.
 *
 * Because the guard is a member of the group, the group id stays in use for
 * as long as the guard lives, and the kernel cannot hand that id to another
 * process: every signal sent here before the final SIGKILL reaches our group,
 * and the guard itself only ever signals its own group (`kill 0`). No pid or
 * group id is ever signalled after it may have been reused.
 *
 * The guard is forked twice (`( ( … ) & )`), so it is not a child of the
 * program: a program that waits for all of its children never waits for it.
 * The cost is one idle `sh` per running program, and per finished program
 * until its grace period ends (the final SIGKILL also catches anything it
 * left running).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The guard, then the program in its place; `$@` is the program and its arguments. */
const GUARD = `( ( trap '' HUP INT QUIT PIPE TERM USR1 USR2 ALRM; read -r _ <&3; kill -9 0 ) </dev/null >/dev/null 2>&1 & ); exec "$@" 3<&-`;
/** `$0` of the wrapper shell, seen in `ps` next to the guard. */
const GUARD_NAME = 'errand-command';
/** What `sh` searches when the program's environment has no PATH. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Groups that may still have members, with their pending SIGKILL. */
const liveGroups = new Map<number, { killTimer?: NodeJS.Timeout }>();

let hooked = false;

export interface GroupSpawnOptions {
  cwd: string;
  /** The program's whole environment (nothing else is inherited). */
  env: Record<string, string>;
}

export type GroupChild = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * Starts `program` as the leader of a new process group guarded by the
 * lifeline, with stdin, stdout and stderr as pipes. Rejects with an
 * `ENOENT`/`EACCES` error (like `spawn`) when the program cannot be found or
 * run, checked first because the shell in between would only exit 127/126.
 */
export async function spawnGroup(program: string, args: readonly string[], options: GroupSpawnOptions): Promise<GroupChild> {
  const problem = await findProgram(program, options.cwd, options.env.PATH);
  if (problem !== undefined) {
    throw Object.assign(new Error(`spawn ${program} ${problem}`), { code: problem, path: program });
  }
  const child = spawn('/bin/sh', ['-c', GUARD, GUARD_NAME, program, ...args], {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const lifeline = child.stdio[3];
  if (lifeline) {
    lifeline.on('error', () => {
      // Only its closing matters, and that is the guard's business.
    });
    // The lifeline must not keep Errand running: when Errand is done, the group goes with it.
    if ('unref' in lifeline && typeof lifeline.unref === 'function') lifeline.unref();
  }
  if (child.pid !== undefined) trackGroup(child.pid);
  return child as unknown as GroupChild;
}

/**
 * SIGTERM to the whole group now, SIGKILL after `graceMs` (scheduled once;
 * repeated calls only repeat the SIGTERM). A no-op once the SIGKILL was sent.
 */
export function stopGroup(pgid: number, graceMs: number): void {
  const group = liveGroups.get(pgid);
  if (group === undefined) return;
  if (!signalGroup(pgid, 'SIGTERM')) return;
  group.killTimer ??= setTimeout(() => killGroup(pgid), graceMs);
  group.killTimer.unref();
}

/** SIGKILL to the whole group, guard included; the group id is then forgotten. */
function killGroup(pgid: number): void {
  if (!liveGroups.has(pgid)) return;
  signalGroup(pgid, 'SIGKILL');
  forget(pgid);
}

/**
 * Sends `signal` to the group led by `pgid`; false when the group no longer
 * exists (then it is forgotten: its id may be reused from now on).
 */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') forget(pgid);
    // EPERM: not ours (cannot happen while the guard pins the id); leave it alone.
    return false;
  }
}

function trackGroup(pgid: number): void {
  hook();
  liveGroups.set(pgid, {});
}

function forget(pgid: number): void {
  const group = liveGroups.get(pgid);
  if (group?.killTimer) clearTimeout(group.killTimer);
  liveGroups.delete(pgid);
}

/** On a normal exit, groups are killed at once rather than when the kernel closes their lifelines a moment later. */
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const pgid of liveGroups.keys()) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Why `program` cannot be run from `cwd` with this PATH (`ENOENT`, `EACCES`),
 * or undefined when it can: the same search `exec` does (a name with a `/`
 * is a path from `cwd`; otherwise each PATH entry in turn, empty = `cwd`).
 */
async function findProgram(program: string, cwd: string, path: string | undefined): Promise<'ENOENT' | 'EACCES' | undefined> {
  const candidates = program.includes('/')
    ? [resolve(cwd, program)]
    : (path ?? DEFAULT_PATH).split(':').map((dir) => resolve(cwd, dir === '' ? '.' : dir, program));
  let denied = false;
  for (const candidate of candidates) {
    try {
      if (!(await stat(candidate)).isFile()) {
        denied ||= program.includes('/');
        continue;
      }
      await access(candidate, constants.X_OK);
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  return denied ? 'EACCES' : 'ENOENT';
}
