/**
 * Process groups started by `command` operations. Each program runs as the
 * leader of its own group (spawned detached), so one signal to `-pid` reaches
 * it and everything it started. Groups still alive when this process exits are
 * sent SIGKILL from an `exit` hook: a detached group would otherwise outlive
 * Errand (e.g. shutdown before a SIGTERM grace period ran out).
 */

/** Process-group ids (= leader pids) that may still have members. */
const liveGroups = new Set<number>();

let hooked = false;

/**
 * Sends `signal` (0 probes) to the group led by `pgid`; false when the group
 * no longer exists (then it is forgotten).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') {
      liveGroups.delete(pgid);
      return false;
    }
    // EPERM: the group id was reused by someone else's process; leave it alone.
    return false;
  }
}

/** Remembers a new group so it is killed if Errand exits before it ends. */
export function trackGroup(pgid: number): void {
  hook();
  liveGroups.add(pgid);
}

export function untrackGroup(pgid: number): void {
  liveGroups.delete(pgid);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}
