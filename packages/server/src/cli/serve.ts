/**
 * `errand serve`: loads the config, starts one node, prints a banner, and on
 * SIGTERM/SIGINT drains: stops accepting (new submissions get 503 on the still
 * open listener), lets running handlers finish within `server.shutdown_grace`,
 * leaves the rest to be recovered at the next start, closes the listener and
 * the store and exits 0. A second signal exits at once.
 */
import { existsSync } from 'node:fs';
import { maskUrl } from '../cluster/index.js';
import { ConfigError, loadConfig, type ErrandConfig } from '../config/index.js';
import { isLoopbackHost } from '../http/index.js';
import { ErrandError } from '../model/index.js';
import { OperationLoadError } from '../operations/index.js';
import { createServer } from '../server.js';

export interface ServeOptions {
  config?: string | undefined;
  port?: string | undefined;
  host?: string | undefined;
}

export async function serve(options: ServeOptions): Promise<void> {
  const configPath = options.config ?? process.env.ERRAND_CONFIG ?? (existsSync('errand.yaml') ? 'errand.yaml' : undefined);
  const overrides: Record<string, unknown> = {};
  const server: Record<string, unknown> = {};
  if (options.port !== undefined) {
    const port = Number(options.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port: "${options.port}" is not a port number (0-65535)`);
    server.port = port;
  }
  if (options.host !== undefined) server.host = options.host;
  if (Object.keys(server).length > 0) overrides.server = server;

  let config: ErrandConfig;
  try {
    config = loadConfig({ path: configPath, overrides });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }

  const authOn = config.auth.keys.length + config.auth.admin_keys.length > 0;
  let host = config.server.host;
  if (!authOn && !isLoopbackHost(host)) {
    process.stderr.write(
      `errand: no API keys are configured, so binding to 127.0.0.1 instead of ${host} (add auth.keys to listen on other interfaces)\n`,
    );
    host = '127.0.0.1';
  }

  let node;
  try {
    node = await createServer({ config: { ...config, server: { ...config.server, host } } as ErrandConfig });
  } catch (err) {
    if (err instanceof OperationLoadError) fail(err.message);
    if (err instanceof ErrandError) fail(`${err.message} (${err.type})`);
    throw err;
  }
  let url: string;
  try {
    url = await node.listen();
  } catch (err) {
    await node.close(0);
    if (err instanceof ConfigError) fail(err.message);
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') fail(`port ${config.server.port} on ${host} is already in use; stop the other process or pass --port`);
    if (code === 'EACCES') fail(`not allowed to listen on port ${config.server.port}; use a port above 1023 or pass --port`);
    throw err;
  }
  printBanner(config, url, authOn);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`errand: ${signal} again, exiting now; running requests will be recovered at the next start\n`);
      process.exit(1);
    }
    process.stderr.write(`errand: ${signal} received, draining (up to ${config.server.shutdown_grace / 1000}s)…\n`);
    node.close().then(
      () => {
        process.stderr.write('errand: stopped cleanly\n');
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`errand: error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

function printBanner(config: ErrandConfig, url: string, authOn: boolean): void {
  const ops = Object.keys(config.operations);
  const lines = [
    '',
    `  Errand is listening on ${url}`,
    `  store       ${maskUrl(config.store.url)}`,
    `  config      ${config.source ?? '(defaults; pass --config errand.yaml)'}`,
    `  operations  ${ops.length > 0 ? ops.join(', ') : '(none declared)'}`,
    `  chat        ${config.chat.operation ?? '(not configured)'}`,
    `  triggers    ${Object.keys(config.triggers).join(', ') || '(none)'}`,
    `  auth        ${
      authOn
        ? `${config.auth.keys.length} tenant key(s), ${config.auth.admin_keys.length} admin key(s)`
        : 'OFF: no API keys configured, every caller is tenant "default"; listening on loopback only'
    }`,
    `  try         curl -X POST ${url}/v1/chat -d '{"message": "What is Errand?", "async": true}'`,
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

function fail(message: string): never {
  process.stderr.write(`errand: ${message}\n`);
  process.exit(2);
}
