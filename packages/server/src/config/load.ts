/**
 * Config loading: defaults → validate → freeze, once, at start-up.
 *
 * Sources, later wins: the YAML file; `${VAR}` / `${VAR:-default}` inside its
 * strings; `ERRAND_<SECTION>__<KEY>` environment variables (value read as YAML,
 * so `ERRAND_SERVER__PORT=9000` is a number); `ERRAND_API_KEYS` ("key:tenant,…")
 * and `ERRAND_ADMIN_KEYS` ("key,…") appended to the auth lists; then overrides
 * passed in code. Seed spellings are accepted: `overlord.workflow.*` and
 * `workflow.task_timeout` / `workflow.workflow_timeout`.
 *
 * All problems are reported together, each with its path and what to write.
 * Environment variables are read here and nowhere else.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { ZodError } from 'zod';
import { configSchema, type ConfigFile, type ConfigInput } from './schema.js';

/** The loaded, frozen configuration. Paths are absolute. */
export type ErrandConfig = Readonly<ConfigFile> & {
  /** The config file read, or null when running on defaults. */
  readonly source: string | null;
  /** Folder relative paths were resolved against. */
  readonly baseDir: string;
};

/** Every problem found in a config, as `path: message` lines. */
export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(source: string | null, issues: string[]) {
    super(`Invalid configuration${source ? ` in ${source}` : ''}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface LoadConfigOptions {
  /** YAML file to read; omitted → defaults only (base dir = cwd). */
  path?: string | undefined;
  /** Environment to read overrides from (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Values merged over the file and the environment (used by the CLI's flags and by tests). */
  overrides?: DeepPartial<ConfigInput> | Record<string, unknown>;
  /** Folder for relative paths when no file is given (default: cwd). */
  baseDir?: string;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Reads, merges, validates and freezes the configuration; throws {@link ConfigError}. */
export function loadConfig(options: LoadConfigOptions = {}): ErrandConfig {
  const env = options.env ?? process.env;
  const source = options.path === undefined ? null : resolve(options.path);
  const baseDir = source === null ? resolve(options.baseDir ?? process.cwd()) : dirname(source);
  const issues: string[] = [];

  let raw: unknown = {};
  if (source !== null) raw = readYaml(source);
  if (raw === null || raw === undefined) raw = {};
  if (!isPlainObject(raw))
    throw new ConfigError(source, ['(top level): must be a mapping of sections such as server:, store:, operations:']);

  let doc = normaliseAliases(raw, issues);
  doc = interpolate(doc, env, [], issues) as Record<string, unknown>;
  applyEnvOverrides(doc, env, issues);
  if (options.overrides) deepMerge(doc, options.overrides as Record<string, unknown>);
  if (issues.length > 0) throw new ConfigError(source, issues);

  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) throw new ConfigError(source, formatZodIssues(parsed.error));

  const config = parsed.data;
  config.store.url = resolveStoreUrl(config.store.url, baseDir);
  const secretIssues: string[] = [];
  for (const [name, op] of Object.entries(config.operations)) {
    if (op.module !== undefined) op.module = resolve(baseDir, op.module);
    // A command runs in the config file's folder unless told otherwise.
    if (op.command) op.command.cwd = resolve(baseDir, op.command.cwd ?? '.');
    const keyVar = op.llm?.api_key_env;
    if (op.llm && keyVar !== undefined) {
      const key = env[keyVar];
      if (key === undefined || key === '') {
        secretIssues.push(
          `operations.${name}.llm.api_key_env: environment variable ${keyVar} is not set (set it to the API key, or remove api_key_env to send no key)`,
        );
      } else {
        op.llm.api_key = key;
      }
    }
  }
  if (secretIssues.length > 0) throw new ConfigError(source, secretIssues);
  return deepFreeze({ ...config, source, baseDir });
}

function readYaml(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(path, [`cannot read the config file (${(cause as Error).message}); pass --config with an existing file`]);
  }
  try {
    return parseYaml(text);
  } catch (cause) {
    if (cause instanceof YAMLParseError) {
      const where = cause.linePos?.[0] ? ` at line ${cause.linePos[0].line}, column ${cause.linePos[0].col}` : '';
      throw new ConfigError(path, [`YAML syntax error${where}: ${cause.message.split('\n')[0]}`]);
    }
    throw cause;
  }
}

/** Maps the seeds' spellings onto the canonical keys. */
function normaliseAliases(raw: Record<string, unknown>, issues: string[]): Record<string, unknown> {
  const doc: Record<string, unknown> = { ...raw };
  if ('overlord' in doc) {
    const overlord = doc.overlord;
    delete doc.overlord;
    if (!isPlainObject(overlord)) {
      issues.push('overlord: must be a mapping (only overlord.workflow is understood)');
    } else {
      for (const key of Object.keys(overlord)) {
        if (key !== 'workflow')
          issues.push(`overlord.${key}: unknown key (only overlord.workflow is understood; it is the same as workflow)`);
      }
      if (overlord.workflow !== undefined) {
        if ('workflow' in doc) issues.push('overlord.workflow: give either workflow or overlord.workflow, not both');
        else doc.workflow = overlord.workflow;
      }
    }
  }
  if (isPlainObject(doc.workflow)) {
    const workflow: Record<string, unknown> = { ...doc.workflow };
    for (const key of ['task_timeout', 'workflow_timeout'] as const) {
      if (key in workflow) {
        const timeouts: Record<string, unknown> = isPlainObject(workflow.timeouts) ? { ...workflow.timeouts } : {};
        if (key in timeouts) issues.push(`workflow.${key}: also set as workflow.timeouts.${key}; keep one`);
        else timeouts[key] = workflow[key];
        workflow.timeouts = timeouts;
        delete workflow[key];
      }
    }
    doc.workflow = workflow;
  }
  return doc;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function interpolate(value: unknown, env: LoadConfigOptions['env'] & object, path: (string | number)[], issues: string[]): unknown {
  if (typeof value === 'string') {
    const whole = new RegExp(`^${VAR.source}$`).exec(value);
    const replaced = value.replace(VAR, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      issues.push(`${formatPath(path)}: environment variable ${name} is not set (set it, or write \${${name}:-default})`);
      return '';
    });
    // A value that is exactly one ${VAR} takes the variable's YAML type (port: ${PORT:-8001} is a number).
    if (whole && replaced !== '') {
      try {
        const typed: unknown = parseYaml(replaced);
        if (typeof typed === 'number' || typeof typed === 'boolean') return typed;
      } catch {
        // keep the string
      }
    }
    return replaced;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], issues));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], issues);
    return out;
  }
  return value;
}

function applyEnvOverrides(doc: Record<string, unknown>, env: LoadConfigOptions['env'] & object, issues: string[]): void {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('ERRAND_') || !name.includes('__')) continue;
    const path = name.slice('ERRAND_'.length).toLowerCase().split('__');
    if (path.some((p) => p === '')) {
      issues.push(`${name}: environment override names an empty key; use ERRAND_SECTION__KEY`);
      continue;
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(value);
    } catch {
      parsed = value;
    }
    setPath(doc, path, parsed);
  }
  const apiKeys = env.ERRAND_API_KEYS;
  if (apiKeys) {
    const keys: { key: string; tenant: string }[] = [];
    for (const entry of apiKeys
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const at = entry.lastIndexOf(':');
      if (at <= 0 || at === entry.length - 1) {
        issues.push(`ERRAND_API_KEYS: entry "${entry.slice(0, 4)}…" must be KEY:TENANT`);
        continue;
      }
      keys.push({ key: entry.slice(0, at), tenant: entry.slice(at + 1) });
    }
    appendList(doc, 'keys', keys);
  }
  const adminKeys = env.ERRAND_ADMIN_KEYS;
  if (adminKeys)
    appendList(
      doc,
      'admin_keys',
      adminKeys
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    );
}

function appendList(doc: Record<string, unknown>, key: 'keys' | 'admin_keys', items: unknown[]): void {
  const auth: Record<string, unknown> = isPlainObject(doc.auth) ? doc.auth : {};
  const existing = Array.isArray(auth[key]) ? (auth[key] as unknown[]) : [];
  doc.auth = { ...auth, [key]: [...existing, ...items] };
}

function setPath(doc: Record<string, unknown>, path: string[], value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function deepMerge(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    if (isPlainObject(v) && isPlainObject(target[k])) deepMerge(target[k] as Record<string, unknown>, v);
    else target[k] = v;
  }
}

function resolveStoreUrl(url: string, baseDir: string): string {
  if (!url.startsWith('sqlite:')) return url;
  const path = url.slice('sqlite:'.length);
  if (path === ':memory:' || isAbsolute(path)) return url;
  return `sqlite:${resolve(baseDir, path)}`;
}

function formatZodIssues(error: ZodError): string[] {
  return error.issues.map((issue) => {
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      return issue.keys
        .map(
          (k) =>
            `${formatPath([...issue.path, k] as (string | number)[])}: unknown key (check the spelling; docs/config.md lists every key)`,
        )
        .join('\n  - ');
    }
    if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required';
    return `${formatPath(issue.path as (string | number)[])}: ${message}`;
  });
}

function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
