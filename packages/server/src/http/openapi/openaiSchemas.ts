/**
 * OpenAI's wire shapes as the OpenAI-compatible routes send them
 * (routes/openai.ts), for the OpenAPI document.
 */
import { z } from 'zod';
import { requestId, requestStatus } from './schemas.js';

export const openAiModel = z.object({
  id: z.string().meta({ description: 'An operation exposed as a model (`openai.models`).' }),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.literal('errand'),
});

export const openAiModelList = z.object({ object: z.literal('list'), data: z.array(openAiModel) });

const usage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

export const chatCompletion = z.object({
  id: z.string().meta({ description: '`chatcmpl-` and the request id.' }),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal('assistant'), content: z.string() }),
      logprobs: z.null(),
      finish_reason: z.literal('stop'),
    }),
  ),
  usage,
  request_id: requestId.meta({ description: 'The Errand request behind the completion.' }),
});

export const chatCompletionChunk = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      delta: z.object({ role: z.literal('assistant').optional(), content: z.string().optional() }),
      logprobs: z.null(),
      finish_reason: z.literal('stop').nullable(),
    }),
  ),
  usage: usage.nullable().optional().meta({ description: 'With `stream_options.include_usage`: `null`, then set on the last chunk.' }),
});

export const openAiError = z.object({
  error: z.looseObject({
    message: z.string(),
    type: z.string().meta({ description: "OpenAI's category: `invalid_request_error`, `authentication_error`, `server_error`, …" }),
    param: z.string().nullable(),
    code: z.string().meta({ description: "The Errand error type (a failed request's own type)." }),
    request_id: requestId.optional(),
    status: requestStatus.optional(),
  }),
});
