#!/usr/bin/env node
// The `word-frequencies` operation (a `command` operation in errand.yaml): any
// program can be an Errand operation. It reads the input as one JSON line on
// stdin and talks back on stdout with JSON lines (docs/operations.md#command):
//   {"progress": {...}}  progress on the status resource
//   {"output": ...}      an output chunk (events, SSE)
//   {"result": ...}      the result
// Anything else it prints (like the line below) is only logged.
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

let raw = '';
for await (const chunk of process.stdin) raw += chunk;
const input = JSON.parse(raw || 'null');
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

if (typeof input?.text !== 'string' || input.text.trim() === '') {
  send({ error: { message: 'text must be a non-empty string', type: 'invalid_input', retryable: false } });
  process.exit(0);
}

process.stdout.write('counting words (a plain log line, not part of the result)\n');
const paragraphs = input.text.split(/\n\s*\n/).filter((p) => p.trim() !== '');
const counts = new Map();
for (const [i, paragraph] of paragraphs.entries()) {
  for (const word of paragraph.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) counts.set(word, (counts.get(word) ?? 0) + 1);
  send({
    progress: {
      percent: Math.round(((i + 1) / paragraphs.length) * 100),
      message: `Paragraph ${i + 1} of ${paragraphs.length}`,
      current_step: 'count',
      total_steps: paragraphs.length,
      completed_steps: i + 1,
    },
  });
  send({ output: { text: `Paragraph ${i + 1}: ${paragraph.trim().split(/\s+/).length} words\n` } });
  // A pause per paragraph (input.delay_ms, at most 2 s) makes progress watchable.
  await sleep(Math.min(Number(input.delay_ms) || 0, 2000));
}
const top = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, Number(input.top) || 5);
send({
  result: {
    paragraphs: paragraphs.length,
    words: [...counts.values()].reduce((a, b) => a + b, 0),
    distinct: counts.size,
    top: top.map(([word, count]) => ({ word, count })),
  },
});
