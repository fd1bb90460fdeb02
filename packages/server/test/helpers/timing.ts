/**
 * How long a test waits for something that should happen (an event, a
 * process's banner, a webhook) before calling it broken. This is a safety
 * net, never a synchronisation: a passing test never waits it out. It is
 * generous because CI shares its two cores with other work, where a process
 * start or an fsync can take many seconds without anything being wrong; a
 * tight bound there turns a loaded machine into a red build.
 */
export const SAFETY_NET_MS = 30_000;
