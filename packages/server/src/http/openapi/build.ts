/** Small builders for the document's path items, so each operation reads as what it answers. */
import { z } from 'zod';
import { ref, type Json } from './components.js';

/** A JSON body of the named component schema. */
export function json(schema: string | Json): Json {
  return { 'application/json': { schema: typeof schema === 'string' ? ref('schemas', schema) : schema } };
}

/** A `text/event-stream` body whose messages are the named component schema (see ./sseSchemas.ts). */
export function eventStream(schema: string): Json {
  return { 'text/event-stream': { schema: ref('schemas', schema) } };
}

/** A response: description, optional content and headers (component names or inline objects). */
export function answer(description: string, content?: Json, headers: Record<string, string | Json> = {}): Json {
  const out: Json = { description };
  const entries = Object.entries(headers);
  if (entries.length > 0)
    out.headers = Object.fromEntries(entries.map(([name, h]) => [name, typeof h === 'string' ? ref('headers', h) : h]));
  if (content) out.content = content;
  return out;
}

/**
 * Every route that checks a key (it answers 401) can also answer 429: an address
 * throttled for failed keys (`too_many_auth_failures`) is refused before the check.
 */
function withThrottle(statuses: number[]): number[] {
  return statuses.includes(401) && !statuses.includes(429) ? [...statuses, 429].sort((a, b) => a - b) : statuses;
}

/** The Errand error envelope for each status (`ErrorNNN` components list the catalog types of each). */
export function errors(...statuses: number[]): Record<string, Json> {
  return Object.fromEntries(withThrottle(statuses).map((status) => [String(status), ref('responses', `Error${status}`)]));
}

/** OpenAI's error envelope for each status. */
export function openAiErrors(...statuses: number[]): Record<string, Json> {
  return Object.fromEntries(withThrottle(statuses).map((status) => [String(status), ref('responses', 'OpenAiError')]));
}

/**
 * Query parameters from the zod schema a route parses its query with: one
 * parameter per property (as the client sends it, i.e. the schema's input).
 */
export function queryParameters(schema: z.ZodType, descriptions: Record<string, string> = {}): Json[] {
  const generated = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, Json>;
    required?: string[];
  };
  return Object.entries(generated.properties ?? {}).map(([name, property]) => {
    const parameter: Json = { name, in: 'query', required: generated.required?.includes(name) ?? false, schema: property };
    if (descriptions[name] !== undefined) parameter.description = descriptions[name];
    return parameter;
  });
}

/** A path parameter. */
export function pathParameter(name: string, description: string, schema: Json = { type: 'string' }): Json {
  return { name, in: 'path', required: true, description, schema };
}
