/** The deliverer's events, `noun:verb`: logs, metrics and tests listen to them. */
import { EventEmitter } from 'node:events';
import type { Delivery } from '../model/index.js';

export interface DeliveryEventMap {
  /** The receiver answered 2xx. */
  'delivery:delivered': { delivery: Delivery };
  /** An attempt failed; the next one runs at `delivery.next_attempt_at`. */
  'delivery:retrying': { delivery: Delivery };
  /** The series ended without success (retries exhausted, 410 Gone, forbidden target). */
  'delivery:failed': { delivery: Delivery };
}

export type DeliveryEventName = keyof DeliveryEventMap;

/** A typed event emitter for deliveries. */
export class DeliveryEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit<K extends DeliveryEventName>(name: K, payload: DeliveryEventMap[K]): void {
    this.emitter.emit(name, payload);
  }

  /** Returns the unsubscribe function. */
  on<K extends DeliveryEventName>(name: K, listener: (payload: DeliveryEventMap[K]) => void): () => void {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }
}
