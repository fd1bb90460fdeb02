/**
 * The `llm` kind: one streamed call to an OpenAI-compatible
 * `POST {base_url}/chat/completions` per attempt. Each token delta becomes an
 * output chunk `{text}` (what `/v1/chat` streams and `/v1/chat/completions`
 * forwards), and the result is `{text, model, finish_reason, usage?}`.
 *
 * Input: `{messages: [...]}` (as `/v1/chat/completions` passes it) or
 * `{message: "..."}` (as `/v1/chat` does); `messages` wins when both are given.
 * The operator's `system` prompt always comes first; a tenant's own system
 * messages may follow it but never replace it.
 * An upstream that ignores `stream: true` and answers one JSON completion works too.
 */
import type { LlmKindConfig } from '../../config/index.js';
import { RequestFailure } from '../../model/index.js';
import type { OperationContext, OperationDefinition } from '../define.js';
import { readSseData } from './sse.js';
import { displayUrl, fetchUpstream, logUpstreamFailure, readBounded, statusFailure, transportFailure, upstreamCall } from './upstream.js';

/** Most bytes read from one completion (stream included). */
const LLM_RESPONSE_MAX_BYTES = 16 * 1024 * 1024;
/** Characters of error body kept when an upstream answers non-2xx. */
const ERROR_BODY_MAX_BYTES = 64 * 1024;

interface ChatMessage {
  role: string;
  content?: unknown;
}

export function llmOperation(spec: LlmKindConfig): OperationDefinition {
  const url = `${spec.base_url.replace(/\/+$/, '')}/chat/completions`;
  // Tenants read failure messages: they never name the operator's endpoint (the log has it).
  const what = 'The LLM endpoint';
  return {
    description: `llm: ${spec.model} at ${displayUrl(spec.base_url)}`,
    async run(input: unknown, ctx: OperationContext) {
      const messages = messagesOf(input, spec.system);
      const body: Record<string, unknown> = { model: spec.model, messages, stream: true, stream_options: { include_usage: true } };
      if (spec.temperature !== undefined) body.temperature = spec.temperature;
      if (spec.max_tokens !== undefined) body.max_tokens = spec.max_tokens;
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'text/event-stream, application/json' };
      if (spec.api_key !== undefined) headers.authorization = `Bearer ${spec.api_key}`;

      const call = upstreamCall(ctx.signal, spec.timeout);
      try {
        const response = await fetchUpstream(
          ctx,
          url,
          { method: 'POST', headers, body: JSON.stringify(body) },
          call,
          LLM_RESPONSE_MAX_BYTES,
        );
        if (!response.ok) {
          const text = await readBounded(response, ERROR_BODY_MAX_BYTES, what).catch(() => Buffer.from(''));
          throw statusFailure(response, text.toString('utf8'), what);
        }
        const type = response.headers.get('content-type') ?? '';
        if (type.includes('text/event-stream')) return await readStream(response, ctx, what, spec.model);
        return await readWhole(response, ctx, what, spec.model);
      } catch (error) {
        const failure = transportFailure(error, call, ctx.signal, what, spec.timeout);
        logUpstreamFailure(ctx, url, error, failure);
        throw failure;
      } finally {
        call.done();
      }
    },
  };
}

function messagesOf(input: unknown, system: string | undefined): ChatMessage[] {
  const obj = typeof input === 'object' && input !== null ? (input as Record<string, unknown>) : {};
  let messages: ChatMessage[];
  if (Array.isArray(obj.messages) && obj.messages.length > 0) {
    for (const [i, m] of obj.messages.entries()) {
      if (typeof m !== 'object' || m === null || typeof (m as { role?: unknown }).role !== 'string') {
        throw invalidInput(`messages.${i} must be an object with a string role, e.g. {"role": "user", "content": "Hi"}`, `messages.${i}`);
      }
    }
    messages = obj.messages as ChatMessage[];
  } else if (typeof obj.message === 'string' && obj.message.trim() !== '') {
    messages = [{ role: 'user', content: obj.message }];
  } else {
    throw invalidInput('the input needs "message" (a non-empty string) or "messages" (a non-empty list of chat messages)', 'message');
  }
  // The operator's prompt leads, whatever the tenant sends (a system message of theirs follows it).
  if (system !== undefined) messages = [{ role: 'system', content: system }, ...messages];
  return messages;
}

function invalidInput(message: string, field: string): RequestFailure {
  return RequestFailure.nonRetryable(message, { type: 'invalid_chat_input', details: { field } });
}

interface Completion {
  text: string;
  model: string;
  finish_reason: string | null;
  usage?: unknown;
}

async function readStream(response: Response, ctx: OperationContext, what: string, model: string): Promise<Completion> {
  const out: Completion = { text: '', model, finish_reason: null };
  let done = false;
  for await (const data of readSseData(response, LLM_RESPONSE_MAX_BYTES, what)) {
    if (data.trim() === '[DONE]') {
      done = true;
      break;
    }
    const chunk = parseJson(data, what) as {
      model?: unknown;
      choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
      usage?: unknown;
      error?: { message?: unknown };
    };
    if (chunk.error !== undefined) {
      const message = typeof chunk.error?.message === 'string' ? chunk.error.message : JSON.stringify(chunk.error);
      throw RequestFailure.retryable(`${what} reported an error mid-stream: ${message}`, {
        type: 'upstream_error',
        details: { error: chunk.error },
      });
    }
    if (typeof chunk.model === 'string') out.model = chunk.model;
    if (chunk.usage !== undefined && chunk.usage !== null) out.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    const delta = choice?.delta?.content;
    if (typeof delta === 'string' && delta !== '') {
      out.text += delta;
      await ctx.emit({ text: delta });
    }
    if (typeof choice?.finish_reason === 'string') out.finish_reason = choice.finish_reason;
  }
  if (!done && out.finish_reason === null) {
    throw RequestFailure.retryable(`${what} ended its stream before the answer was complete`, {
      type: 'upstream_error',
      details: { received_chars: out.text.length },
    });
  }
  return out;
}

/** An endpoint that ignored `stream: true` and answered one `chat.completion`. */
async function readWhole(response: Response, ctx: OperationContext, what: string, model: string): Promise<Completion> {
  const body = await readBounded(response, LLM_RESPONSE_MAX_BYTES, what);
  const completion = parseJson(body.toString('utf8'), what) as {
    model?: unknown;
    choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
    usage?: unknown;
  };
  const choice = completion.choices?.[0];
  const text = choice?.message?.content;
  if (typeof text !== 'string') {
    throw RequestFailure.nonRetryable(`${what} answered without choices[0].message.content`, { type: 'upstream_invalid_response' });
  }
  if (text !== '') await ctx.emit({ text });
  const out: Completion = {
    text,
    model: typeof completion.model === 'string' ? completion.model : model,
    finish_reason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
  };
  if (completion.usage !== undefined && completion.usage !== null) out.usage = completion.usage;
  return out;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw RequestFailure.nonRetryable(`${what} sent data that is not JSON (${(cause as Error).message}): ${text.slice(0, 200)}`, {
      type: 'upstream_invalid_response',
      details: { data: text.slice(0, 1000) },
    });
  }
}
