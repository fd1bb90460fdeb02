export { PostgresStore } from './postgresStore.js';
export { NotifyListener } from './listener.js';
export { DELIVERIES_CHANNEL, EVENTS_CHANNEL, postgresNotifications } from './notifications.js';
export { applicationName, type PostgresStoreOptions } from './connection.js';
