/**
 * Checks real answers against the OpenAPI document the server serves: the
 * schema of a path + method + status + media type (or of a callback, or a
 * named component) is compiled with Ajv (JSON Schema 2020-12, as OpenAPI 3.1
 * uses; formats such as date-time checked) with the whole document loaded,
 * so `$ref`s resolve exactly as a client generator would resolve them.
 */
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { SseParser } from '../helpers/sse.js';

/** A parsed JSON document, walked freely by the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

// ajv-formats is CommonJS: its default export is the plugin.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const DOC_ID = 'openapi.json';

/** `#/…` refs made absolute against the loaded document. */
function rebase(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rebase);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === '$ref' && typeof value === 'string' && value.startsWith('#/') ? `${DOC_ID}${value}` : rebase(value);
  }
  return out;
}

function resolve(doc: Json, node: Json): Json {
  let current = node;
  for (let hops = 0; hops < 10 && typeof current.$ref === 'string'; hops++) {
    const pointer = (current.$ref as string).replace(/^#\//, '').split('/');
    current = pointer.reduce<Json>((at, part) => at?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.ok(current, `unresolvable $ref ${node.$ref as string}`);
  }
  return current;
}

export class Contract {
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(readonly doc: Json) {
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema(doc, DOC_ID);
  }

  /** The response object documented for `method path` and `status` (refs resolved). */
  response(path: string, method: string, status: number): Json {
    const operation = this.doc.paths?.[path]?.[method.toLowerCase()] as Json | undefined;
    assert.ok(operation, `${method.toUpperCase()} ${path} is not in the document`);
    const response = operation.responses?.[String(status)] as Json | undefined;
    assert.ok(response, `${method.toUpperCase()} ${path} documents no ${status} answer`);
    return resolve(this.doc, response);
  }

  /** A compiled validator of `schema` (refs into the document resolve), cached under `key`. */
  validator(key: string, schema: unknown): ValidateFunction {
    return this.compile(key, schema);
  }

  private compile(key: string, schema: unknown): ValidateFunction {
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(rebase(schema) as Json);
      this.cache.set(key, validate);
    }
    return validate;
  }

  private check(validate: ValidateFunction, value: unknown, what: string): void {
    const ok = validate(value);
    assert.ok(
      ok,
      `${what} does not match the document: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}\n${JSON.stringify(value).slice(0, 800)}`,
    );
  }

  /** Asserts `body` matches the documented answer; returns the response object (for its headers). */
  assertAnswer(path: string, method: string, status: number, body: unknown, mediaType = 'application/json'): Json {
    const response = this.response(path, method, status);
    const schema = response.content?.[mediaType]?.schema as unknown;
    assert.ok(schema, `${method.toUpperCase()} ${path} ${status} documents no ${mediaType} body`);
    this.check(this.compile(`${method} ${path} ${status} ${mediaType}`, schema), body, `${method.toUpperCase()} ${path} ${status}`);
    return response;
  }

  /** Asserts `value` matches the named component schema. */
  assertComponent(name: string, value: unknown): void {
    assert.ok(this.doc.components?.schemas?.[name], `no component schema ${name}`);
    this.check(this.compile(`component ${name}`, { $ref: `#/components/schemas/${name}` }), value, name);
  }

  /** Asserts every event of an SSE body matches the documented message schema; returns the messages. */
  assertEventStream(path: string, method: string, status: number, text: string): { id?: number; event: string; data: unknown }[] {
    const messages = new SseParser().feed(text).map((m) => {
      const message: { id?: number; event: string; data: unknown } = {
        event: m.event,
        data: m.data === '[DONE]' ? m.data : JSON.parse(m.data),
      };
      if (m.id !== undefined) message.id = Number(m.id);
      return message;
    });
    assert.ok(messages.length > 0, `${path}: no events in the stream`);
    for (const message of messages) {
      // `data:`-only streams (OpenAI's) have no event name; the document describes them by `data` alone.
      const value = message.event === 'message' ? { data: message.data } : message;
      this.assertAnswer(path, method, status, value, 'text/event-stream');
    }
    return messages;
  }

  /** The documented header names (lower case) of an answer. */
  headers(path: string, method: string, status: number): Map<string, Json> {
    const response = this.response(path, method, status);
    return new Map(
      Object.entries((response.headers ?? {}) as Record<string, Json>).map(([name, h]) => [name.toLowerCase(), resolve(this.doc, h)]),
    );
  }

  /** Asserts a webhook the server sent matches the documented callback: body and signature headers. */
  assertCallback(callback: string, body: unknown, headers: Record<string, unknown>): void {
    const item = Object.values(resolve(this.doc, { $ref: `#/components/callbacks/${callback}` }))[0] as Json;
    const post = item.post as Json;
    this.check(this.compile(`callback ${callback}`, post.requestBody.content['application/json'].schema), body, `webhook ${callback}`);
    for (const parameter of post.parameters as Json[]) {
      const value = headers[parameter.name as string];
      if (parameter.required === true) assert.ok(value !== undefined, `webhook header ${parameter.name as string} is missing`);
      if (value !== undefined)
        this.check(
          this.compile(`callback ${callback} ${parameter.name as string}`, parameter.schema),
          value,
          `webhook header ${parameter.name as string}`,
        );
    }
  }

  /** Asserts the answer carries every header the document marks required, and nothing it documents is malformed. */
  assertHeaders(path: string, method: string, status: number, headers: Record<string, unknown>): void {
    for (const [name, header] of this.headers(path, method, status)) {
      const value = headers[name];
      if (header.required === true)
        assert.ok(value !== undefined, `${method.toUpperCase()} ${path} ${status}: documented header ${name} is missing`);
      if (value === undefined || header.schema === undefined) continue;
      const typed = header.schema.type === 'integer' || header.schema.type === 'number' ? Number(value) : value;
      this.check(this.compile(`header ${path} ${method} ${status} ${name}`, header.schema), typed, `header ${name}`);
    }
  }
}

/** True when `body` is valid for the documented JSON request body of `method path`. */
export function requestBodyValid(contract: Contract, path: string, method: string, body: unknown): boolean {
  const schema = (contract.doc.paths?.[path]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']?.schema ??
    undefined) as unknown;
  assert.ok(schema, `${method.toUpperCase()} ${path} documents no JSON request body`);
  return contract.validator(`request ${method} ${path}`, schema)(body) as boolean;
}
