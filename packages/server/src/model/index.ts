/**
 * Errand's model: the words every other folder uses.
 *
 * Glossary (docs/glossary.md says the same, at more length):
 * - **request**: one unit of accepted work: an operation, its input, its state and outcome.
 * - **operation**: a named piece of work declared in the config (e.g. `assistant`).
 * - **trigger**: a name callers POST to that maps onto an operation (default async).
 * - **tenant**: the owner of an API key; a tenant sees only its own requests.
 * - **attempt**: one run of a request's handler; numbered from 1, at most `max_attempts`.
 * - **lease**: a worker's time-limited claim on a `processing` request, renewed by heartbeats.
 * - **lease owner**: the node holding a lease; only it may record the attempt's outcome.
 * - **event**: an entry in a request's event log (status change, progress, output chunk), numbered by `seq`.
 * - **delivery**: one webhook notification of a request's outcome to its `webhook_url` (see delivery.ts).
 */
export { canTransition, isTerminal, REQUEST_STATUSES } from './status.js';
export type { RequestStatus } from './status.js';
export { isBatchId, isDeliveryId, isRequestId, newBatchId, newDeliveryId, newRequestId } from './ids.js';
export { DELIVERY_STATUSES, batchDeliveryPayload, deliveryPayload } from './delivery.js';
export type { Delivery, DeliveryAttempt, DeliveryError, DeliveryWithAttempts } from './delivery.js';
export { EVENT_TYPES, eventStatus } from './request.js';
export type { Batch, EventType, Progress, Request, RequestError, RequestEvent, RequestMode } from './request.js';
export { ERROR_CATALOG, ErrandError, isErrorType } from './errors.js';
export type { ErrorType } from './errors.js';
export { classifyFailure, RequestFailure } from './failure.js';
export { emptyHistogram, histogramAdd, histogramQuantile } from './histogram.js';
export type { DurationHistogram } from './histogram.js';
