/**
 * Submission rate limits (`limits.submissions`), one token bucket per tenant
 * and, for operations listed under `limits.submissions.operations`, one per
 * tenant and operation. Buckets live in the store (`rateLimitTake`): on
 * PostgreSQL every node draws on the same bucket. A submission costs one
 * token; a batch costs one per item. A refused submission is answered `429
 * rate_limited` before anything is written, with `Retry-After`; every answer
 * to a submission carries `RateLimit-Limit` (the bucket's burst),
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the bucket is
 * full), of the tighter bucket when two apply. The operation's bucket is taken
 * first, so a submission it refuses leaves the tenant's bucket untouched.
 */
import type { FastifyReply } from 'fastify';
import type { LimitsConfig } from '../../config/index.js';
import type { Clock } from '../../clock/index.js';
import { ErrandError } from '../../model/index.js';
import type { RateLimitTake, RateLimitTakeParams } from '../../store/index.js';

export interface SubmissionTake {
  tenant: string;
  operation: string;
  /** Tokens: 1, or a batch's item count. */
  cost: number;
}

interface Bucket {
  key: string;
  limit: 'tenant' | 'operation';
  ratePerSec: number;
  burst: number;
}

export class SubmissionLimiter {
  constructor(
    private readonly config: LimitsConfig['submissions'],
    /** The shared buckets (the engine, or a store). */
    private readonly buckets: { rateLimitTake(params: RateLimitTakeParams): Promise<RateLimitTake> },
    private readonly clock: Clock,
  ) {}

  /** Takes the submission's tokens and sets the RateLimit headers on `reply`; throws `rate_limited` when a bucket is empty. */
  async admit(reply: FastifyReply, take: SubmissionTake): Promise<void> {
    let tightest: { bucket: Bucket; result: RateLimitTake } | undefined;
    for (const bucket of this.bucketsOf(take)) {
      const result = await this.buckets.rateLimitTake({
        key: bucket.key,
        ratePerSec: bucket.ratePerSec,
        burst: bucket.burst,
        cost: take.cost,
        now: this.clock.now(),
      });
      if (!result.allowed) {
        setHeaders(reply, bucket, result);
        throw new ErrandError(
          'rate_limited',
          bucket.limit === 'tenant'
            ? `Too many submissions for this tenant: at most ${bucket.ratePerSec}/s, ${bucket.burst} at once (limits.submissions). Retry after the Retry-After seconds.`
            : `Too many submissions of operation "${take.operation}" for this tenant: at most ${bucket.ratePerSec}/s, ${bucket.burst} at once (limits.submissions.operations). Retry after the Retry-After seconds.`,
          { retryAfterSeconds: Math.max(1, Math.ceil(result.retryAfterMs / 1000)), details: { limit: bucket.limit } },
        );
      }
      if (tightest === undefined || result.remaining < tightest.result.remaining) tightest = { bucket, result };
    }
    if (tightest) setHeaders(reply, tightest.bucket, tightest.result);
  }

  /** The operation's bucket (when configured) first, then the tenant's. */
  private bucketsOf(take: SubmissionTake): Bucket[] {
    const buckets: Bucket[] = [];
    const perOperation = Object.hasOwn(this.config.operations, take.operation) ? this.config.operations[take.operation] : undefined;
    if (perOperation) {
      buckets.push({
        key: `operation:${take.tenant}:${take.operation}`,
        limit: 'operation',
        ratePerSec: perOperation.rate,
        burst: perOperation.burst,
      });
    }
    const perTenant = Object.hasOwn(this.config.tenants, take.tenant) ? this.config.tenants[take.tenant] : undefined;
    buckets.push({
      key: `tenant:${take.tenant}`,
      limit: 'tenant',
      ratePerSec: perTenant?.rate ?? this.config.rate,
      burst: perTenant?.burst ?? this.config.burst,
    });
    return buckets;
  }
}

function setHeaders(reply: FastifyReply, bucket: Bucket, result: RateLimitTake): void {
  void reply.header('ratelimit-limit', String(bucket.burst));
  void reply.header('ratelimit-remaining', String(result.remaining));
  void reply.header('ratelimit-reset', String(Math.ceil(result.resetMs / 1000)));
}
