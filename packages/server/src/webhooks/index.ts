export { WebhookDeliverer } from './deliverer.js';
export type { DeliveryEventMap, DeliveryEventName } from './events.js';
export { SecretBook } from './signing.js';
