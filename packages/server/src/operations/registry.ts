/**
 * The operation registry: loads every operation's module once, at start-up,
 * and resolves its effective settings (operation overrides over workflow
 * defaults). A module is a .js/.mjs file (imported natively) or a .ts/.mts file
 * (compiled on import by tsx, no build step); its default export is the
 * operation (a plain `{ run }` object works too, as does a default-exported
 * function). The `http`, `command` and `llm` kinds are built in (kinds/).
 */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ErrandConfig, OperationConfig } from '../config/index.js';
import { isOperationDefinition, type OperationDefinition } from './define.js';
import { commandOperation } from './kinds/command.js';
import { httpOperation } from './kinds/http.js';
import { llmOperation } from './kinds/llm.js';

/** Exponential backoff settings, in ms (see engine/retry.ts for the formula). */
export interface RetryPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  backoffFactor: number;
  /** Fraction, 0–1. */
  jitter: number;
}

/** An operation ready to run. */
export interface Operation {
  readonly name: string;
  /** How it is implemented: a module file, or one of the built-in kinds. */
  readonly kind: OperationKind;
  /** The module file (absolute), for `kind: 'module'`. */
  readonly module: string | undefined;
  readonly description: string | undefined;
  readonly definition: OperationDefinition;
  readonly taskTimeoutMs: number;
  readonly workflowTimeoutMs: number;
  readonly retry: RetryPolicy;
  /** Most running at once on this node; undefined = only the engine's limit. */
  readonly concurrency: number | undefined;
  /** Prior run-time guess from the config (`estimate_seconds`). */
  readonly estimateSeconds: number | undefined;
}

type OperationKind = 'module' | 'http' | 'command' | 'llm';

/** Every operation module that failed to load, reported together. */
export class OperationLoadError extends Error {
  readonly issues: readonly string[];
  constructor(issues: string[]) {
    super(`Some operations could not be loaded:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'OperationLoadError';
    this.issues = issues;
  }
}

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);
const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

/** Loads the modules of every operation in `config`; throws {@link OperationLoadError}. */
export async function loadOperations(config: Pick<ErrandConfig, 'operations' | 'workflow'>): Promise<Map<string, Operation>> {
  const operations = new Map<string, Operation>();
  const issues: string[] = [];
  for (const [name, spec] of Object.entries(config.operations)) {
    try {
      const { kind, definition } = await buildDefinition(spec);
      const retry = config.workflow.retry;
      operations.set(name, {
        name,
        kind,
        module: spec.module,
        description: spec.description ?? definition.description,
        definition,
        taskTimeoutMs: spec.timeout ?? config.workflow.timeouts.task_timeout,
        workflowTimeoutMs: spec.workflow_timeout ?? config.workflow.timeouts.workflow_timeout,
        retry: {
          maxAttempts: spec.retry?.max_attempts ?? retry.max_attempts,
          initialDelayMs: spec.retry?.initial_delay ?? retry.initial_delay,
          maxDelayMs: spec.retry?.max_delay ?? retry.max_delay,
          backoffFactor: spec.retry?.backoff_factor ?? retry.backoff_factor,
          jitter: spec.retry?.jitter ?? retry.jitter,
        },
        concurrency: spec.concurrency,
        estimateSeconds: spec.estimate_seconds,
      });
    } catch (cause) {
      issues.push(`operations.${name}.module (${spec.module}): ${(cause as Error).message}`);
    }
  }
  if (issues.length > 0) throw new OperationLoadError(issues);
  return operations;
}

async function buildDefinition(spec: OperationConfig): Promise<{ kind: OperationKind; definition: OperationDefinition }> {
  if (spec.http) return { kind: 'http', definition: httpOperation(spec.http) };
  if (spec.command) return { kind: 'command', definition: commandOperation(spec.command) };
  if (spec.llm) return { kind: 'llm', definition: llmOperation(spec.llm) };
  // The config schema guarantees exactly one kind, so this is a module.
  return { kind: 'module', definition: await importDefinition(spec.module ?? '') };
}

async function importDefinition(path: string): Promise<OperationDefinition> {
  const ext = extname(path);
  if (!TS_EXTENSIONS.has(ext) && !JS_EXTENSIONS.has(ext)) throw new Error('must be a .js, .mjs, .cjs, .ts or .mts file');
  if (!existsSync(path)) throw new Error("file not found (relative paths resolve against the config file's folder)");
  let mod: Record<string, unknown>;
  if (TS_EXTENSIONS.has(ext)) {
    const { tsImport } = await import('tsx/esm/api');
    mod = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>;
  } else {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  }
  let candidate = mod.default;
  // CommonJS or tsx interop may wrap the default export once more.
  if (!isOperationDefinition(candidate) && isOperationDefinition((candidate as { default?: unknown } | undefined)?.default)) {
    candidate = (candidate as { default: unknown }).default;
  }
  if (typeof candidate === 'function') return { run: candidate as OperationDefinition['run'] };
  if (!isOperationDefinition(candidate)) {
    throw new Error('its default export must be defineOperation({ run(input, ctx) { … } }) or an object with a run function');
  }
  return candidate;
}
