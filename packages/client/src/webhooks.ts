/**
 * Verifies a webhook delivery from Errand (Standard Webhooks,
 * https://www.standardwebhooks.com/): the `webhook-signature` header holds one
 * or more `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>`
 * under the secret `whsec_<base64 key>`. WebCrypto only, so it runs in Node.js
 * and browsers (and edge runtimes).
 */
import { ErrandError } from './errors.js';

/** How far `webhook-timestamp` may be from now, seconds (Standard Webhooks' default). @defaultValue 300 */
export const WEBHOOK_TOLERANCE_DEFAULT_SECONDS = 300;

export interface VerifyWebhookOptions {
  /** @defaultValue 300 */
  toleranceSeconds?: number;
  /** The current time, ms since the epoch (for tests). @defaultValue Date.now */
  now?: () => number;
}

/**
 * Checks the signature over the raw body (the exact bytes received, before any
 * JSON parsing) and the timestamp's freshness; resolves with the parsed
 * payload, or rejects with `ErrandError` of type `invalid_signature`. Several
 * secrets (while rotating) are all tried.
 */
export async function verifyWebhook(
  payload: string | Uint8Array,
  headers: Record<string, string | string[] | undefined> | Headers,
  secret: string | string[],
  options: VerifyWebhookOptions = {},
): Promise<unknown> {
  const body = typeof payload === 'string' ? payload : new TextDecoder().decode(payload);
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw invalid('the webhook-id, webhook-timestamp and webhook-signature headers are all required');
  if (!/^\d+$/.test(timestamp)) throw invalid(`webhook-timestamp ${JSON.stringify(timestamp.slice(0, 40))} is not a Unix time in seconds`);
  const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000);
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_DEFAULT_SECONDS;
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) {
    throw invalid(
      `webhook-timestamp is ${nowSeconds - Number(timestamp)} s from now (tolerance ${tolerance} s): a replayed or delayed message`,
    );
  }
  const offered = signatures
    .split(' ')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1,'))
    .map((s) => s.slice(3));
  const signed = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
  for (const one of Array.isArray(secret) ? secret : [secret]) {
    const expected = await sign(keyBytes(one), signed);
    if (offered.some((candidate) => equalInConstantTime(candidate, expected))) {
      try {
        return JSON.parse(body) as unknown;
      } catch (err) {
        throw new ErrandError('invalid_payload', 'The webhook signature is valid but the body is not JSON.', { cause: err });
      }
    }
  }
  throw invalid('no signature matches the secret');
}

function invalid(reason: string): ErrandError {
  return new ErrandError('invalid_signature', `Webhook verification failed: ${reason}.`);
}

function header(headers: Record<string, string | string[] | undefined> | Headers, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(' ') : value;
  }
  return undefined;
}

/** `whsec_<base64>` (or bare base64, as `standardwebhooks` also accepts) → the key bytes. */
function keyBytes(secret: string): Uint8Array {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  try {
    const binary = atob(encoded);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch (err) {
    throw new ErrandError('invalid_secret', 'The webhook secret must be "whsec_" followed by base64.', { cause: err });
  }
}

async function sign(key: Uint8Array, data: Uint8Array): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', cryptoKey, data as BufferSource));
  let binary = '';
  for (const byte of mac) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Compares without an early exit, so timing does not reveal how much of a forged signature is right. */
function equalInConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
