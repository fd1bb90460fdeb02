export { storeCommits } from './commits.js';
export { openStore } from './open.js';
export {
  applicationName,
  DELIVERIES_CHANNEL,
  EVENTS_CHANNEL,
  NotifyListener,
  PostgresStore,
  postgresNotifications,
} from './postgres/index.js';
export { SqliteStore } from './sqlite/index.js';
export type { EventNotification, ListenOptions, NotificationSource, NotificationSubscription, StoreNotification } from './notifications.js';
export type * from './store.js';
export type { NodeRegistration } from './nodes.js';
export { failureOutcome, retryDelayMs } from './rules.js';
export type { RetryPolicies } from './rules.js';
