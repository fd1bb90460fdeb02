/**
 * Finding a request's processes through /proc (Linux): every process a
 * `command` program starts carries ERRAND_REQUEST_ID and ERRAND_ATTEMPT in its
 * environment, so a test can list them without trusting pids that may have
 * been reused, and clean up only what is its own.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** True where /proc/<pid>/environ can be read (Linux). */
export const HAS_PROCFS = existsSync('/proc/self/environ');

export interface RequestProcess {
  pid: number;
  /** ERRAND_ATTEMPT of the process ('?' when missing). */
  attempt: string;
  /** Its command line, for failure messages. */
  cmdline: string;
}

/** Running processes (zombies excluded) whose environment names `requestId`. */
export function processesOf(requestId: string): RequestProcess[] {
  const found: RequestProcess[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${name}/stat`, 'utf8'))) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0');
      if (!env.includes(`ERRAND_REQUEST_ID=${requestId}`)) continue;
      const attempt = env.find((e) => e.startsWith('ERRAND_ATTEMPT='))?.slice('ERRAND_ATTEMPT='.length) ?? '?';
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 200);
      found.push({ pid: Number(name), attempt, cmdline });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** SIGKILLs whatever of `requestId` still runs, so a failing test leaves nothing behind. */
export function killProcessesOf(requestId: string): void {
  for (const { pid } of processesOf(requestId)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
