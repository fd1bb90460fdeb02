/**
 * Server-Sent Events in the OpenAPI document. OpenAPI 3.1 has no model of an
 * event stream, so a `text/event-stream` body is described, as OpenAPI 3.2's
 * `itemSchema` will, by the schema of ONE message: its `id`, `event` and
 * (JSON-decoded) `data` fields, one alternative per event type
 * (docs/sse.md is the guide; ../eventStream.ts and routes/events.ts send them).
 */
import { z } from 'zod';
import { chatCompletionChunk, openAiError } from './openaiSchemas.js';
import { chatStreamStart, progressEventData, statusEventData, statusResource, tailEvent } from './schemas.js';

const seq = z
  .number()
  .int()
  .min(1)
  .meta({ description: "The event's number in the request's event log (from 1, no gaps): resume after it with `Last-Event-ID`." });
const terminal = (event: 'completed' | 'failed' | 'cancelled', what: string) =>
  z.object({
    id: seq,
    event: z.literal(event),
    data: statusResource.meta({
      description: `The status resource, ${what}. Last event. (Should retention purge the request while the stream is open, just \`{request_id, status, attempt, error?}\`.)`,
    }),
  });

/** One message of `GET /v1/requests/{id}/events`. */
export const requestEventMessage = z
  .discriminatedUnion('event', [
    z.object({
      id: seq,
      event: z.literal('status'),
      data: statusEventData.meta({ description: 'The request changed state without finishing.' }),
    }),
    z.object({ id: seq, event: z.literal('progress'), data: progressEventData.meta({ description: "The attempt's progress so far." }) }),
    z.object({ id: seq, event: z.literal('output'), data: z.unknown().meta({ description: 'One `ctx.emit(chunk)`, as JSON.' }) }),
    terminal('completed', 'with `result`'),
    terminal('failed', 'with `error`'),
    terminal('cancelled', 'with `error`'),
  ])
  .meta({
    description: "One SSE message (`id:`, `event:`, `data:` lines) of a request's event stream; the stream ends after a terminal event.",
  });

/** One message of `POST /v1/chat` with `"stream": true`. */
export const chatStreamMessage = z
  .discriminatedUnion('event', [
    z.object({
      event: z.literal('request'),
      data: chatStreamStart.meta({ description: 'First, without `id`: the request and where to resume.' }),
    }),
    z.object({ id: seq, event: z.literal('output'), data: z.unknown() }),
    z.object({
      id: seq,
      event: z.literal('status'),
      data: statusEventData.meta({ description: 'Only when an attempt stopped and runs again.' }),
    }),
    terminal('completed', 'with `result`'),
    terminal('failed', 'with `error`'),
    terminal('cancelled', 'with `error`'),
  ])
  .meta({ description: 'One SSE message of a streamed chat: `request`, the `output` chunks, then a terminal event.' });

/** One message of `GET /v1/events` (live only, no `id`). */
export const tailEventMessage = z
  .object({ event: z.enum(['status', 'progress', 'output']), data: tailEvent })
  .meta({ description: "One SSE message of the live feed of every request the key may see; `event` is the entry's type." });

/** One `data:` line of a streamed `POST /v1/chat/completions`. */
export const chatCompletionStreamMessage = z
  .object({
    data: z.union([chatCompletionChunk, openAiError, z.literal('[DONE]')]).meta({
      description: 'A `chat.completion.chunk`; an error object (then the stream closes); or `[DONE]` last.',
    }),
  })
  .meta({ description: 'One SSE message (`data:` only) of a streamed chat completion, as OpenAI sends it.' });
