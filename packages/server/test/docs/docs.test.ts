/**
 * Doc-consistency: the documentation describes what the code does, and a
 * change to one without the other fails here.
 *
 * - docs/errors.md has one table row per ERROR_CATALOG type, with the same
 *   status, retryable flag and scope, and no row for a type that is not in the
 *   catalog (non-catalog types such as `cancelled` live under the
 *   "## Not in the catalog" heading, which must not list catalog types).
 * - docs/config.md has a table row for every key of the config schema (walked
 *   through zod 4's JSON Schema of the input), each stating the schema's
 *   default, and no row for a key the schema does not have.
 * - docs/api.md names every route the Fastify app registers (as `METHOD /path`,
 *   `:param` written `{param}`), and every endpoint heading in it is a route.
 * - Relative links between README.md, CONTRIBUTING.md, CHANGELOG.md and docs/
 *   point at files that exist, and `#anchors` at headings that exist.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { configSchema, loadConfig } from '../../src/config/index.js';
import { ERROR_CATALOG } from '../../src/model/index.js';
import { createServer } from '../../src/server.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const NOT_IN_CATALOG_HEADING = '## Not in the catalog';

function readDoc(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/** The cells of every Markdown table row in `text` (header and separator rows included). */
function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  let inFence = false;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('```')) inFence = !inFence;
    if (inFence || !trimmed.startsWith('|')) continue;
    const cells = trimmed.split(/(?<!\\)\|/).map((cell) => cell.trim());
    rows.push(cells.slice(1, cells[cells.length - 1] === '' ? -1 : undefined));
  }
  return rows;
}

/** The text inside the first cell's backticks, when the first cell is exactly one code span. */
function codeCell(cell: string | undefined, pattern: RegExp): string | undefined {
  const match = /^`([^`]+)`$/.exec(cell ?? '');
  return match?.[1] !== undefined && pattern.test(match[1]) ? match[1] : undefined;
}

function sorted(values: Iterable<string>): string[] {
  return [...values].sort();
}

describe('docs/errors.md documents the error catalog', () => {
  const text = readDoc('docs/errors.md');
  const split = text.indexOf(`\n${NOT_IN_CATALOG_HEADING}\n`);
  const catalogPart = split === -1 ? text : text.slice(0, split);
  const otherPart = split === -1 ? '' : text.slice(split);
  const TYPE = /^[a-z][a-z0-9_.-]*$/;

  test(`has a "${NOT_IN_CATALOG_HEADING}" section for the other types`, () => {
    assert.notEqual(split, -1, `docs/errors.md needs a "${NOT_IN_CATALOG_HEADING}" heading`);
  });

  test('every catalog type has exactly one row, and every row is a catalog type', () => {
    const documented = tableRows(catalogPart)
      .map((cells) => codeCell(cells[0], TYPE))
      .filter((type): type is string => type !== undefined);
    const catalog = new Set(Object.keys(ERROR_CATALOG));
    const missing = sorted(catalog).filter((type) => !documented.includes(type));
    const unknown = documented.filter((type) => !catalog.has(type));
    const twice = documented.filter((type, i) => documented.indexOf(type) !== i);
    assert.deepEqual(missing, [], `catalog types without a row in docs/errors.md: ${missing.join(', ')}`);
    assert.deepEqual(unknown, [], `rows in docs/errors.md for types not in ERROR_CATALOG: ${unknown.join(', ')}`);
    assert.deepEqual(twice, [], `types with more than one row in docs/errors.md: ${twice.join(', ')}`);
  });

  test('each row states the catalog status, retryable flag and scope', () => {
    const problems: string[] = [];
    for (const cells of tableRows(catalogPart)) {
      const type = codeCell(cells[0], TYPE);
      if (type === undefined || !Object.hasOwn(ERROR_CATALOG, type)) continue;
      const entry = ERROR_CATALOG[type as keyof typeof ERROR_CATALOG];
      const [, status, retryable, scope] = cells;
      if (status !== String(entry.status)) problems.push(`${type}: status is ${entry.status}, docs say ${status}`);
      if (retryable !== (entry.retryable ? 'yes' : 'no')) problems.push(`${type}: retryable is ${entry.retryable}, docs say ${retryable}`);
      if (scope !== entry.scope) problems.push(`${type}: scope is ${entry.scope}, docs say ${scope}`);
    }
    assert.deepEqual(problems, []);
  });

  test('the non-catalog section lists `cancelled` and no catalog type', () => {
    const others = tableRows(otherPart)
      .map((cells) => codeCell(cells[0], TYPE))
      .filter((type): type is string => type !== undefined);
    assert.ok(others.includes('cancelled'), 'the `cancelled` error of cancelled requests must be documented');
    const inCatalog = others.filter((type) => Object.hasOwn(ERROR_CATALOG, type));
    assert.deepEqual(inCatalog, [], `catalog types listed under "${NOT_IN_CATALOG_HEADING}": ${inCatalog.join(', ')}`);
  });
});

interface SchemaKey {
  path: string;
  default?: unknown;
  hasDefault: boolean;
}

type JsonSchemaNode = {
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  default?: unknown;
};

/** Every key path of the config file: `server.port`, `operations.<name>.retry.jitter`, `auth.keys[].key`. */
function schemaKeys(): SchemaKey[] {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const keys: SchemaKey[] = [];
  const walk = (node: JsonSchemaNode, path: string): void => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const childPath = path === '' ? name : `${path}.${name}`;
      keys.push({ path: childPath, default: child.default, hasDefault: Object.hasOwn(child, 'default') });
      walk(child, childPath);
    }
    if (typeof node.additionalProperties === 'object') {
      const childPath = `${path}.<name>`;
      keys.push({ path: childPath, hasDefault: false });
      walk(node.additionalProperties, childPath);
    }
    if (node.items) walk(node.items, `${path}[]`);
    for (const variant of node.anyOf ?? []) walk(variant, path);
  };
  walk(root, '');
  return keys;
}

/** How a default is written in the docs' default column, or undefined when it is not checked (objects). */
function formatDefault(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? '[]' : JSON.stringify(value);
  if (typeof value === 'object') return undefined;
  return String(value);
}

describe('docs/config.md documents every config key', () => {
  const rows = tableRows(readDoc('docs/config.md'));
  const KEY = /^[a-z_][a-z0-9_]*(?:(?:\.<name>|\.[a-z_][a-z0-9_]*|\[\]))*$/;
  const documented = new Map<string, string[]>();
  for (const cells of rows) {
    const key = codeCell(cells[0], KEY);
    if (key !== undefined) documented.set(key, cells);
  }
  const keys = schemaKeys();

  test('the schema walk finds the keys (sanity check)', () => {
    const paths = keys.map((k) => k.path);
    for (const expected of [
      'server.port',
      'workflow.timeouts.task_timeout',
      'operations.<name>.retry.max_attempts',
      'auth.keys[].tenant',
    ]) {
      assert.ok(paths.includes(expected), `schema walk lost ${expected}`);
    }
  });

  test('every schema key has a row, and every row is a schema key', () => {
    const schemaPaths = new Set(keys.map((k) => k.path));
    const missing = keys.map((k) => k.path).filter((path) => !documented.has(path));
    const unknown = sorted(documented.keys()).filter((path) => !schemaPaths.has(path));
    assert.deepEqual(missing, [], `config keys missing from docs/config.md: ${missing.join(', ')}`);
    assert.deepEqual(unknown, [], `rows in docs/config.md for keys the schema does not have: ${unknown.join(', ')}`);
  });

  test("each row's default column states the schema default", () => {
    const problems: string[] = [];
    for (const key of keys) {
      if (!key.hasDefault) continue;
      const expected = formatDefault(key.default);
      const cells = documented.get(key.path);
      if (expected === undefined || cells === undefined) continue;
      const defaultCell = cells[2] ?? '';
      if (!defaultCell.includes(`\`${expected}\``)) problems.push(`${key.path}: default is \`${expected}\`, docs say "${defaultCell}"`);
    }
    assert.deepEqual(problems, []);
  });
});

/** `METHOD /path` for every route of the app, from Fastify's route tree (HEAD, added for every GET, left out). */
function parseRouteTree(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!match?.[2]) continue;
    const depth = (match[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(match[2]);
    const path = stack.join('').replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      if (method !== '' && method !== 'HEAD') routes.push(`${method} ${path}`);
    }
  }
  return routes;
}

describe('docs/api.md documents every route', () => {
  test('every registered route is named in docs/api.md, and every endpoint heading is a route', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'errand-docs-'));
    try {
      const config = loadConfig({
        overrides: { store: { url: `sqlite:${join(dir, 'errand.db')}` }, logging: { level: 'silent' } },
        baseDir: dir,
        env: {},
      });
      const server = await createServer({ config });
      let routes: string[];
      try {
        // Fastify prints Swagger UI's catch-all for its files, `/docs/static/*` (src/http/openapi/register.ts), as a bare `*` under `/docs`.
        routes = parseRouteTree(server.app.printRoutes({ commonPrefix: false })).map((r) => r.replace(/ \/docs\*$/, ' /docs/static/*'));
      } finally {
        await server.close(0);
      }
      assert.ok(
        routes.includes('GET /v1/requests/{id}') && routes.includes('POST /v1/chat'),
        `route tree not understood: ${routes.join('; ')}`,
      );

      const text = readDoc('docs/api.md');
      const mention = /`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/g;
      const named = new Set([...text.matchAll(mention)].map((m) => `${m[1]} ${m[2]}`));
      const undocumented = routes.filter((route) => !named.has(route));
      assert.deepEqual(undocumented, [], `routes not documented in docs/api.md: ${undocumented.join(', ')}`);

      const headings = text.split('\n').filter((line) => /^#{2,4} /.test(line));
      const headed = headings.flatMap((line) => [...line.matchAll(mention)].map((m) => `${m[1]} ${m[2]}`));
      const phantom = headed.filter((route) => !routes.includes(route));
      assert.deepEqual(phantom, [], `docs/api.md has endpoint headings for routes the app does not register: ${phantom.join(', ')}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** GitHub's anchor for a heading: lower-case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (line.trim().startsWith('```')) inFence = !inFence;
    const match = inFence ? null : /^#{1,6} (.+)$/.exec(line);
    if (!match?.[1]) continue;
    const base = match[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

function markdownFiles(): string[] {
  const files = ['README.md', 'CONTRIBUTING.md', 'CHANGELOG.md', 'packages/server/README.md', 'packages/client/README.md'].filter((f) =>
    existsSync(join(ROOT, f)),
  );
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files;
}

describe('links between the docs resolve', () => {
  test('every relative link points at an existing file and heading', () => {
    const problems: string[] = [];
    for (const file of markdownFiles()) {
      const text = readDoc(file)
        .replace(/```[\s\S]*?```/g, '')
        .replace(/`[^`\n]*`/g, '');
      for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = match[1] ?? '';
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        const [pathPart = '', anchor] = target.split('#');
        const resolved = pathPart === '' ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), pathPart);
        if (!existsSync(resolved)) {
          problems.push(`${file}: link to ${target}: ${relative(ROOT, resolved)} does not exist`);
          continue;
        }
        if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) {
          problems.push(`${file}: link to ${target}: no heading with anchor #${anchor}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
