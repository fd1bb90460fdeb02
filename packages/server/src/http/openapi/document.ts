/**
 * The OpenAPI 3.1 document of the HTTP API, generated once per app from the
 * zod schemas the routes validate with (request bodies and queries) and those
 * of ./schemas.ts (answers). It describes the async contract itself: `202` +
 * `Location` + `Retry-After`, the status resource and its states, webhook
 * `callbacks` with their signature headers, SSE event types, `Prefer`,
 * `Idempotency-Key`, and the error envelope per status. It lists no data and
 * names no operation or tenant of this server: only limits such as
 * `batches.max_items` come from the config.
 */
import { readFileSync } from 'node:fs';
import type { ErrandConfig } from '../../config/index.js';
import { buildComponents, type Json } from './components.js';
import { otherPaths, type OtherPathOptions } from './otherPaths.js';
import { requestPaths } from './requestPaths.js';
import { submitPaths } from './submitPaths.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const DESCRIPTION = `Errand: durable asynchronous request-reply.

**The async contract.** Submit work to a submission endpoint. A sync answer is \`200\` with the status resource
(the outcome). An async answer is \`202 Accepted\` with \`Location\` (the status resource) and \`Retry-After\`
(seconds until the next poll); the request is durable before the \`202\` is sent. Poll \`Location\` until \`status\`
is terminal (\`completed\`, \`failed\` or \`cancelled\`), long-poll it with \`?wait=N\`, subscribe to its events
(\`/events\`, Server-Sent Events), or give a \`webhook_url\` and receive the outcome as a signed webhook (\`callbacks\`).
\`Prefer: respond-async\` / \`Prefer: wait=N\` choose the mode; \`Idempotency-Key\` makes a submission safe to repeat.

**Errors** are \`{"error": {"type", "message", "field"?, …, "retryable"}}\` with the status of the type in the catalog
(docs/errors.md); each \`ErrorNNN\` response lists the types of its status. The OpenAI-compatible endpoints use
OpenAI's envelope instead.

**Keys.** With API keys configured, every \`/v1\` endpoint needs one (\`Authorization: Bearer\`, \`X-Client-Key\` or
\`X-Muxi-Client-Key\`); with none configured, auth is off. Another tenant's request is a \`404\`, never a \`403\`.
With auth off, every endpoint answers \`403 origin_not_allowed\` to a request whose \`Host\` is not a loopback name or
that comes from a page of another site (\`Origin\`, \`Sec-Fetch-Site\`). No CORS headers are sent.
\`HEAD\` is accepted on every \`GET\`.`;

export interface DocumentOptions {
  /** The only config the document reads: its limits. */
  config: { batches: Pick<ErrandConfig['batches'], 'max_items'> };
  metrics: OtherPathOptions['metrics'];
}

export function buildOpenApiDocument(options: DocumentOptions): Json {
  return {
    openapi: '3.1.1',
    info: {
      title: 'Errand HTTP API',
      version: VERSION,
      description: DESCRIPTION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'Submit', description: 'Submission endpoints: sync `200` or async `202`.' },
      { name: 'Requests', description: 'The status resource and what hangs off it.' },
      { name: 'Tasks alias', description: 'The status endpoints again under `/v1/tasks` (what the bots alias points at).' },
      { name: 'Batches' },
      { name: 'OpenAI-compatible', description: "OpenAI's wire format, so OpenAI SDKs can call operations." },
      { name: 'Operations', description: 'Health, metrics and this document.' },
    ],
    security: [{ bearerAuth: [] }, { clientKey: [] }, { muxiClientKey: [] }],
    paths: { ...submitPaths(), ...requestPaths(), ...otherPaths({ metrics: options.metrics }) },
    components: buildComponents(options.config),
  };
}
