#!/usr/bin/env node
/**
 * Bundles the dashboard (src/dashboard/app, Preact + uPlot) with esbuild into
 * dist/dashboard/static/: content-hashed app-<hash>.js and app-<hash>.css,
 * and an index.html that loads them (no inline script or style, so the page
 * runs under a strict Content-Security-Policy). Run by `npm run build` after
 * tsc; `--check` only type-checks the app.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const appDir = join(root, 'src', 'dashboard', 'app');
const outDir = join(root, 'dist', 'dashboard', 'static');

// Type-check the app first: esbuild strips types without checking them.
const tsc = spawnSync(
  process.execPath,
  [join(root, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(appDir, 'tsconfig.json')],
  {
    stdio: 'inherit',
  },
);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);
if (process.argv.includes('--check')) process.exit(0);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const result = await build({
  entryPoints: { app: join(appDir, 'main.tsx') },
  bundle: true,
  format: 'esm',
  target: ['chrome111', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: false,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  entryNames: '[name]-[hash]',
  outdir: outDir,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((name) => name.endsWith('.js'));
const style = outputs.find((name) => name.endsWith('.css'));
if (!script || !style) throw new Error(`esbuild did not produce a .js and a .css: ${outputs.join(', ')}`);

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Errand dashboard</title>
<link rel="stylesheet" href="/dashboard/assets/${style}">
<script type="module" src="/dashboard/assets/${script}"></script>
</head>
<body>
<noscript>The Errand dashboard needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`;
writeFileSync(join(outDir, 'index.html'), html);
process.stdout.write(`dashboard: ${script}, ${style} → ${outDir}\n`);
