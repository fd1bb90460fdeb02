/**
 * `@errand/client`'s wire types (packages/client/src/types.ts) against the
 * OpenAPI document: TypeScript types are generated from the document with
 * openapi-typescript (what a user of another client generator would get), and
 * a small file is type-checked with the TypeScript compiler asserting that
 * each client type and its component are mutually assignable with the same
 * keys — or, where the client folds several answers into one type (a batch's
 * `GET` and `POST`), that every documented answer is assignable to it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { buildOpenApiDocument } from '../../src/http/openapi/index.js';

const CLIENT_TYPES = fileURLToPath(new URL('../../../client/src/types.js', import.meta.url));

/** [client type, component, how they must relate]. */
const CHECKS: [string, string, 'same' | 'reads'][] = [
  ['RequestStatus', 'RequestStatus', 'same'],
  ['ErrorBody', 'RequestError', 'same'],
  ['StatusResource', 'StatusResource', 'same'],
  ['AcceptedResource', 'AcceptedResource', 'same'],
  ['CancelAnswer', 'CancelAnswer', 'same'],
  ['RetryAnswer', 'RetryAnswer', 'same'],
  ['ListPage', 'ListPage', 'same'],
  ['DeliveryAttempt', 'DeliveryAttempt', 'same'],
  ['Delivery', 'Delivery', 'same'],
  ['DeliveryList', 'DeliveryList', 'same'],
  ['ErrorEnvelope', 'ErrorEnvelope', 'same'],
  ['StatusEventData', 'StatusEventData', 'same'],
  ['ProgressEventData', 'ProgressEventData', 'same'],
  ['TailEvent', 'TailEvent', 'same'],
  ['RequestEventMessage', 'RequestEventMessage', 'same'],
  ['BatchStatus', 'BatchStatus', 'reads'],
  ['BatchStatus', 'BatchAccepted', 'reads'],
];

const PRELUDE = `
import type { components } from './schema.js';
import type * as client from ${JSON.stringify(CLIENT_TYPES)};
type S = components['schemas'];
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
type Same<A, B> = Mutual<A, B> extends true ? SameKeys<A, B> : false;
type Reads<Client, Server> = [Server] extends [Client] ? true : false;
type OnlyIn<A, B> = Exclude<keyof A, keyof B>;
type Differ<A, B> = { [K in keyof A & keyof B]-?: Mutual<A[K], B[K]> extends true ? never : K }[keyof A & keyof B];
`;

test('the @errand/client wire types agree with the types generated from the OpenAPI document', async () => {
  const doc = buildOpenApiDocument({ config: { batches: { max_items: 1000 } }, metrics: 'admin' });
  const generated = astToString(await openapiTS(doc as never));
  const dir = mkdtempSync(join(tmpdir(), 'errand-openapi-types-'));
  try {
    writeFileSync(join(dir, 'schema.ts'), generated);
    const lines = CHECKS.map(([client, component, how], i) => {
      const relation = how === 'same' ? 'Same' : 'Reads';
      return `export const check${i}: ${relation}<client.${client}, S[${JSON.stringify(component)}]> = true;`;
    });
    // Each line always fails to compile: its message spells out the keys only one side has, and those whose types differ.
    const explain = CHECKS.map(([client, component], i) => {
      const [a, b] = [`client.${client}`, `S[${JSON.stringify(component)}]`];
      return `export const explain${i}: 0 = null as unknown as { only_client: OnlyIn<${a}, ${b}>; only_document: OnlyIn<${b}, ${a}>; types_differ: Differ<${a}, ${b}> };`;
    });
    const file = join(dir, 'check.ts');
    writeFileSync(file, `${PRELUDE}\n${lines.join('\n')}\n`);
    writeFileSync(join(dir, 'explain.ts'), `${PRELUDE}\n${explain.join('\n')}\n`);
    const program = ts.createProgram([file, join(dir, 'explain.ts')], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: [],
    });
    const preludeLines = PRELUDE.split('\n').length;
    const at = (d: ts.Diagnostic) =>
      d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line - preludeLines : -1;
    const explanations = new Map(
      program.getSemanticDiagnostics(program.getSourceFile(join(dir, 'explain.ts'))).map((d) => {
        const text = ts.flattenDiagnosticMessageText(d.messageText, ' ');
        return [at(d), /Type '(\{.*\})' is not assignable/.exec(text)?.[1] ?? text];
      }),
    );
    const problems = ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
      const check = CHECKS[at(d)];
      if (!check) return ts.flattenDiagnosticMessageText(d.messageText, ' ');
      return `client ${check[0]} vs document ${check[1]} (${check[2]}): ${explanations.get(at(d)) ?? ''}`;
    });
    assert.deepEqual(problems, [], `the client types and the document disagree:\n${problems.join('\n')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
