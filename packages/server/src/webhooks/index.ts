export { WebhookDeliverer } from './deliverer.js';
export type { DelivererOptions } from './deliverer.js';
export { DeliveryEvents } from './events.js';
export type { DeliveryEventMap, DeliveryEventName } from './events.js';
export { RESPONSE_EXCERPT_BYTES, sendWebhook } from './send.js';
export type { SendOutcome, SendParams } from './send.js';
export { SecretBook } from './signing.js';
