/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/): the
 * signature is `v1,` + base64(HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>")),
 * computed by the `standardwebhooks` package over the exact bytes sent. While a
 * secret is being rotated, a tenant has two: the body is signed with each and
 * the signatures are sent space-separated in one `webhook-signature` header, so
 * a receiver holding either secret verifies it.
 */
import { Webhook } from 'standardwebhooks';

/** Signing secrets per tenant, with a default for tenants without their own. */
export class SecretBook {
  private readonly byTenant = new Map<string, Webhook[]>();
  private readonly fallback: Webhook[];

  /** Secrets are `whsec_…` strings (validated by the config schema). */
  constructor(defaults: string | readonly string[] | null, perTenant: Readonly<Record<string, string | readonly string[]>> = {}) {
    this.fallback = toSigners(defaults);
    for (const [tenant, secrets] of Object.entries(perTenant)) this.byTenant.set(tenant, toSigners(secrets));
  }

  /** True when no secret is configured at all (deliveries go out unsigned). */
  get empty(): boolean {
    return this.fallback.length === 0 && this.byTenant.size === 0;
  }

  /** The `webhook-signature` header for one send, or null when the tenant has no secret. */
  sign(tenant: string, id: string, timestamp: Date, body: string): string | null {
    const signers = this.byTenant.get(tenant) ?? this.fallback;
    if (signers.length === 0) return null;
    return signers.map((signer) => signer.sign(id, timestamp, body)).join(' ');
  }
}

function toSigners(secrets: string | readonly string[] | null): Webhook[] {
  if (secrets === null) return [];
  return (typeof secrets === 'string' ? [secrets] : secrets).map((secret) => new Webhook(secret));
}
