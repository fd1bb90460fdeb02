/**
 * The submission endpoints in the document (routes/submit.ts, routes/batches.ts):
 * the async contract — `200` with the outcome (sync) or `202` with `Location`
 * and `Retry-After` (async), `Prefer`, `Idempotency-Key`, and the webhook
 * callback when the request ends.
 */
import { operationQuery, triggerQuery } from '../routes/submit.js';
import { answer, errors, eventStream, json, pathParameter, queryParameters } from './build.js';
import { ref, type Json } from './components.js';

const SUBMISSION_ERRORS = errors(400, 401, 404, 413, 415, 422, 429, 500, 503);
/** Every answer to a submission says where its rate limit stands (limits.submissions; absent with auth off). */
const RATE_LIMIT = {
  'RateLimit-Limit': 'RateLimitLimit',
  'RateLimit-Remaining': 'RateLimitRemaining',
  'RateLimit-Reset': 'RateLimitReset',
};

const MODES =
  "Sync or async is decided in this order: the request's own choice, `Prefer`, `async.mode` in the config, then (in `auto`) the estimate " +
  'against `async.threshold_seconds` (docs/modes.md). A sync call still running at its wait limit is handed off as a `202`; it is never run twice, ' +
  'and hanging up does not cancel it.';

/** The answers every submission endpoint gives (the resource-style alias points `Location` at `/v1/tasks`). */
function submissionAnswers(extra200: Json = {}): Record<string, Json> {
  return {
    '200': answer(
      'Sync: the request ended within its wait; the status resource with `result` or `error` (a failed request is a `200` too).',
      {
        ...json('StatusResource'),
        ...extra200,
      },
      { 'Idempotent-Replayed': 'IdempotentReplayed', ...RATE_LIMIT },
    ),
    '202': answer(
      'Async (or a sync call handed off at its wait limit): the request is durable and will run; poll `Location`, waiting `Retry-After` seconds between polls.',
      json('AcceptedResource'),
      {
        Location: 'Location',
        'Retry-After': 'RetryAfterAccepted',
        'Idempotent-Replayed': 'IdempotentReplayed',
        ...RATE_LIMIT,
      },
    ),
    ...SUBMISSION_ERRORS,
  };
}

const common = [ref('parameters', 'Prefer'), ref('parameters', 'IdempotencyKey')];

export function submitPaths(): Record<string, Json> {
  const operationParams = [
    ...common,
    ...queryParameters(operationQuery, {
      async: '`true`/`1` answers 202 at once; `false`/`0` holds the call for the outcome.',
      mode: 'The same choice as `sync`/`async`.',
      webhook_url: 'Where the signed outcome is POSTed (see `callbacks`).',
      run_at: 'Start no earlier than this ISO 8601 date-time or epoch milliseconds (at most 30 days ahead).',
    }),
  ];
  return {
    '/v1/chat': {
      post: {
        operationId: 'submitChat',
        tags: ['Submit'],
        summary: 'Send a chat message to chat.operation',
        description: `The body without its control fields is the operation's input. ${MODES} With \`"stream": true\` the answer is an event stream.`,
        parameters: common,
        requestBody: { required: true, content: json('ChatBody') },
        responses: submissionAnswers(eventStream('ChatStreamMessage')),
        callbacks: { requestFinished: ref('callbacks', 'RequestFinishedFromBody') },
      },
    },
    '/v1/triggers/{name}': {
      post: {
        operationId: 'submitTrigger',
        tags: ['Submit'],
        summary: 'Fire a trigger declared in the config',
        description: `The body is the envelope \`{data, use_async?, webhook_url?, …}\` when it has \`data\` and only envelope keys; otherwise the whole body is the input. Async by default in \`auto\`. ${MODES}`,
        parameters: [
          pathParameter('name', 'A trigger declared in the config (`triggers`).'),
          ...common,
          ...queryParameters(triggerQuery, { use_async: "As the envelope's `use_async`." }),
        ],
        requestBody: {
          required: false,
          content: json({ anyOf: [ref('schemas', 'TriggerEnvelope'), { description: 'Any other JSON: the input.' }] }),
        },
        responses: submissionAnswers(),
        callbacks: { requestFinished: ref('callbacks', 'RequestFinishedFromBody') },
      },
    },
    '/v1/operations/{name}': {
      post: {
        operationId: 'submitOperation',
        tags: ['Submit'],
        summary: 'Run an operation; the body is its input',
        description: `Controls are on the URL. ${MODES}`,
        parameters: [
          pathParameter('name', 'An operation declared in the config.', { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
          ...operationParams,
        ],
        requestBody: { required: false, content: json({ description: "The operation's input (any JSON; none is `{}`)." }) },
        responses: submissionAnswers(),
        callbacks: { requestFinished: ref('callbacks', 'RequestFinishedFromQuery') },
      },
    },
    '/v1/bots/{bot_id}/actions/{action}': {
      post: {
        operationId: 'submitBotAction',
        tags: ['Submit'],
        summary: 'Resource-style alias of the operations endpoint',
        description: `\`action\` names the operation; \`metadata.bot_id\` records the bot. Async by default in \`auto\`; \`Location\` and the body use \`/v1/tasks\` (with \`task_id\`). ${MODES}`,
        parameters: [
          pathParameter('bot_id', 'Recorded as `metadata.bot_id`.'),
          pathParameter('action', 'An operation declared in the config.'),
          ...operationParams,
        ],
        requestBody: { required: false, content: json({ description: "The operation's input (any JSON; none is `{}`)." }) },
        responses: submissionAnswers(),
        callbacks: { requestFinished: ref('callbacks', 'RequestFinishedFromQuery') },
      },
    },
    '/v1/batches': {
      post: {
        operationId: 'submitBatch',
        tags: ['Batches'],
        summary: 'Submit many inputs to one operation',
        description:
          'Each item becomes an ordinary request; at most `concurrency` of them run at once. One `batch.completed` webhook once every item ended.',
        requestBody: { required: true, content: json('BatchBody') },
        responses: {
          '202': answer('The batch and every item are committed; poll `Location`.', json('BatchAccepted'), {
            Location: 'Location',
            'Retry-After': 'RetryAfterAccepted',
            ...RATE_LIMIT,
          }),
          ...errors(400, 401, 404, 413, 415, 422, 429, 500, 503),
        },
        callbacks: { batchFinished: ref('callbacks', 'BatchFinished') },
      },
    },
    '/v1/batches/{id}': {
      get: {
        operationId: 'getBatch',
        tags: ['Batches'],
        summary: "A batch's status: counts per state, success rate, progress and every item",
        parameters: [pathParameter('id', 'A batch id.')],
        responses: {
          '200': answer('The batch; `Retry-After` while it is not completed.', json('BatchStatus'), { 'Retry-After': 'RetryAfter' }),
          ...errors(401, 404, 500, 503),
        },
      },
    },
  };
}
