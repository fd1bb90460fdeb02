#!/usr/bin/env node
/* global process */
// Summarises a failed CI log (.ci/run tees `npm test` into it): every failing
// test of node's TAP output with its full name (file › suite › test) and its
// error, and, when no test failed (the build, typecheck or lint did), the end
// of the log. Usage: node .ci/failures.mjs <log>
import { readFileSync } from 'node:fs';

const MAX_BLOCK_LINES = 40;
const MAX_FAILURES = 40;
const TAIL_LINES = 80;

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: node .ci/failures.mjs <log>\n');
  process.exit(2);
}
const lines = readFileSync(path, 'utf8').split('\n');

/** Names of the open subtests by indentation (node prints `# Subtest: <name>` before each). */
const open = [];
const failures = [];
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  const subtest = /^(\s*)# Subtest: (.*)$/.exec(line);
  if (subtest) {
    const depth = subtest[1].length / 4;
    open.length = depth;
    open[depth] = subtest[2];
    continue;
  }
  const result = /^(\s*)not ok \d+ - (.*?)(?: # .*)?$/.exec(line);
  if (!result) continue;
  const indent = result[1].length;
  const depth = indent / 4;
  // The YAML block that follows (`---` … `...`), indented two more spaces.
  const block = [];
  let j = i + 1;
  if (lines[j]?.trim() === '---') {
    for (j = j + 1; j < lines.length && lines[j].trim() !== '...'; j++) block.push(lines[j].slice(indent + 2));
  }
  const yaml = block.join('\n');
  // A parent that failed only because a subtest did says nothing new.
  if (/failureType: 'subtestsFailed'/.test(yaml)) continue;
  const name = [...open.slice(0, depth), result[2]].filter(Boolean).join(' › ');
  const location = /^location: '(.*)'$/m.exec(yaml)?.[1] ?? '';
  const cancelled = /failureType: 'cancelledByParent'/.test(yaml);
  // Node's own frames say nothing about the test.
  const kept = block.filter(
    (l) =>
      !/^(duration_ms|type|location):/.test(l) &&
      !/^\s+(?:async )?\S*.*\(?node:(?:internal|async_hooks)/.test(l) &&
      !/^\s+new Promise \(<anonymous>\)/.test(l),
  );
  failures.push({ name: location ? `${name}  (${location.replace(process.cwd() + '/', '')})` : name, block: kept, cancelled });
}

const out = [];
out.push('', '================================================================');
if (failures.length === 0) {
  out.push('No failing test in the log: a step before or around the tests failed. Its last lines:', '');
  out.push(...lines.slice(-TAIL_LINES));
} else {
  // Tests cancelled only because their parent (a hook) failed are counted, not listed: the parent's entry explains them.
  const cancelled = failures.filter((f) => f.cancelled).length;
  failures.splice(0, failures.length, ...failures.filter((f) => !f.cancelled));
  out.push(`${failures.length} failing test(s)${cancelled ? `, and ${cancelled} cancelled because their suite failed` : ''}:`);
  for (const f of failures.slice(0, MAX_FAILURES)) out.push(`  ✖ ${f.name}`);
  for (const f of failures.slice(0, MAX_FAILURES)) {
    out.push('', `---- ✖ ${f.name}`);
    const shown = f.block.slice(0, MAX_BLOCK_LINES);
    out.push(...shown.map((l) => `  ${l}`));
    if (f.block.length > shown.length) out.push(`  … ${f.block.length - shown.length} more lines in the log`);
  }
  if (failures.length > MAX_FAILURES) out.push('', `… and ${failures.length - MAX_FAILURES} more (see the log)`);
}
out.push('================================================================', '');
process.stdout.write(`${out.join('\n')}\n`);
