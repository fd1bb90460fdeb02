/**
 * The status resource and what hangs off it (routes/requests.ts,
 * routes/deliveries.ts, routes/events.ts), under `/v1/requests` and again
 * under the `/v1/tasks` alias (same behaviour; bodies also carry `task_id`).
 */
import { listQuery } from '../routes/requests.js';
import { answer, errors, eventStream, json, pathParameter, queryParameters } from './build.js';
import { ref, type Json } from './components.js';

const ID = ref('parameters', 'RequestId');

function pathsUnder(base: '/v1/requests' | '/v1/tasks'): Record<string, Json> {
  const alias = base === '/v1/tasks';
  const noun = alias ? 'Task' : 'Request';
  const tags = [alias ? 'Tasks alias' : 'Requests'];
  const aliasNote = alias ? ' The `/v1/tasks` alias: bodies also carry `task_id` (and `progress_percent`).' : '';
  return {
    [`${base}/{id}`]: {
      get: {
        operationId: `get${noun}`,
        tags,
        summary: 'The status resource: state, progress, and result or error',
        description:
          'Poll it after a `202`, waiting `Retry-After` seconds between reads (sent while the request is not terminal). ' +
          `Send the \`ETag\` back as \`If-None-Match\` for a \`304\`; add \`?wait=N\` to long-poll for a change.${aliasNote}`,
        parameters: [ID, ref('parameters', 'Wait'), ref('parameters', 'IfNoneMatch')],
        responses: {
          '200': answer('The status resource.', json('StatusResource'), { ETag: 'ETag', 'Retry-After': 'RetryAfter' }),
          '304': answer('Not modified: it still matches `If-None-Match`.', undefined, { ETag: 'ETag', 'Retry-After': 'RetryAfter' }),
          ...errors(400, 401, 404, 410, 500, 503),
        },
      },
      delete: {
        operationId: `cancel${noun}`,
        tags,
        summary: 'Cancel a request that has not finished',
        description: `The request is \`cancelled\` at once (terminal); a running handler's \`ctx.signal\` aborts.${aliasNote}`,
        parameters: [ID],
        responses: { '200': answer('Cancelled.', json('CancelAnswer')), ...errors(401, 404, 409, 410, 500, 503) },
      },
    },
    [`${base}/{id}/result`]: {
      get: {
        operationId: `get${noun}Result`,
        tags,
        summary: 'The result of a completed request',
        description: `\`409 request_not_finished\` (with \`Retry-After\`) before it ends; \`409 result_unavailable\` if it failed or was cancelled.${aliasNote}`,
        parameters: [ID],
        responses: { '200': answer('The result.', json('ResultAnswer')), ...errors(401, 404, 409, 410, 500, 503) },
      },
    },
    [`${base}/{id}/events`]: {
      get: {
        operationId: `stream${noun}Events`,
        tags,
        summary: "The request's events as Server-Sent Events, replayed then live, until the terminal event",
        description: `Each message is one alternative of \`RequestEventMessage\` (docs/sse.md). Resume with \`Last-Event-ID\` or \`?after=N\`.${aliasNote}`,
        parameters: [ID, ref('parameters', 'LastEventId'), ref('parameters', 'After')],
        responses: {
          '200': answer('The event stream.', eventStream('RequestEventMessage'), { 'X-Request-Id': 'XRequestId' }),
          '204': answer('Resumed after the terminal event: nothing more will come (stops `EventSource`).', undefined, {
            'X-Request-Id': 'XRequestId',
          }),
          ...errors(400, 401, 404, 410, 500, 503),
        },
      },
    },
    [`${base}/{id}/retry`]: {
      post: {
        operationId: `retry${noun}`,
        tags,
        summary: 'Re-run a failed or cancelled request as a new one (idempotent)',
        description: `The first call creates the re-run (\`202\`); later calls return the same re-run (\`200\`).${aliasNote}`,
        parameters: [ID],
        responses: {
          '200': answer('The re-run existed already.', json('RetryAnswer'), { Location: 'Location', 'Retry-After': 'RetryAfter' }),
          '202': answer('The re-run was created; poll `Location`.', json('RetryAnswer'), {
            Location: 'Location',
            'Retry-After': 'RetryAfter',
          }),
          ...errors(401, 404, 409, 410, 500, 503),
        },
      },
    },
    [`${base}/{id}/deliveries`]: {
      get: {
        operationId: `list${noun}Deliveries`,
        tags,
        summary: 'The webhook delivery log of a request, with every attempt',
        parameters: [ID],
        responses: { '200': answer('The deliveries, oldest first.', json('DeliveryList')), ...errors(401, 404, 500, 503) },
      },
    },
    [`${base}/{id}/deliveries/{delivery_id}/redeliver`]: {
      post: {
        operationId: `redeliver${noun}Delivery`,
        tags,
        summary: 'Send a webhook delivery again as a new attempt series (same payload, same webhook-id)',
        parameters: [ID, pathParameter('delivery_id', 'A delivery id (`dlv_…`).')],
        responses: {
          '202': answer('Scheduled now; `Location` is the delivery log.', json('RedeliverAnswer'), { Location: 'Location' }),
          ...errors(401, 404, 409, 500, 503),
        },
      },
    },
    [base]: {
      get: {
        operationId: alias ? 'listTasks' : 'listRequests',
        tags,
        summary: 'The requests the key may see, newest first, cursor-paginated',
        parameters: queryParameters(listQuery, {
          status: 'Only these states, comma-separated (e.g. `pending,processing`).',
          operation: 'Only this operation.',
          limit: 'Page size (default 20).',
          cursor: '`next_cursor` of the previous page.',
        }),
        responses: { '200': answer('A page of status resources.', json('ListPage')), ...errors(400, 401, 500, 503) },
      },
    },
  };
}

export function requestPaths(): Record<string, Json> {
  return { ...pathsUnder('/v1/requests'), ...pathsUnder('/v1/tasks') };
}
