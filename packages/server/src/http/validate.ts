import type { z } from 'zod';
import { ErrandError } from '../model/index.js';

/** Parses `value` with `schema` or throws `validation_error` naming the first field at fault (all issues in `details.issues`). */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : what,
    message: issue.code === 'invalid_type' && /received undefined/.test(issue.message) ? 'is required' : issue.message,
  }));
  const first = issues[0] ?? { field: what, message: 'is invalid' };
  const status = what === 'query' ? 'invalid_parameter' : 'validation_error';
  throw new ErrandError(status, `${first.field}: ${first.message}`, { field: first.field, details: { issues } });
}
