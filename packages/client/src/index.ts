/**
 * @errand/client — the typed, zero-dependency client for the Errand server.
 * Guide: docs/client.md.
 */
export { BatchHandle } from './batch.js';
export {
  BASE_URL_DEFAULT,
  Errand,
  type BatchOptions,
  type ChatOptions,
  type ChatStreamEvent,
  type ErrandOptions,
  type ListOptions,
  type SubmitOptions,
  type TailOptions,
} from './client.js';
export {
  ErrandApiError,
  ErrandError,
  ErrandNetworkError,
  ErrandTimeoutError,
  RequestCancelledError,
  RequestFailedError,
  type ErrandApiErrorInit,
} from './errors.js';
export { RequestHandle, type Callbacks, type EventsOptions, type HandleOrigin, type WaitOptions } from './handle.js';
export { SseParser, type SseMessage } from './sse.js';
export { MAX_RETRIES_DEFAULT, REQUEST_TIMEOUT_DEFAULT_MS } from './transport.js';
export {
  isTerminal,
  REQUEST_STATUSES,
  type AcceptedResource,
  type BatchStatus,
  type CancelAnswer,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryList,
  type ErrorBody,
  type ErrorEnvelope,
  type Json,
  type ListPage,
  type ProgressEventData,
  type RequestEventMessage,
  type RequestEventType,
  type RequestStatus,
  type RetryAnswer,
  type StatusEventData,
  type StatusResource,
  type TailEvent,
  type TerminalEventType,
  type TerminalStatus,
} from './types.js';
export { verifyWebhook, WEBHOOK_TOLERANCE_DEFAULT_SECONDS, type VerifyWebhookOptions } from './webhooks.js';
