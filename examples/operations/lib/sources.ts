/**
 * Where analyze-document gets its text: inline, a bundled sample in
 * examples/documents/, or an http(s) URL.
 *
 * A URL comes from the tenant, so it is fetched with `ctx.fetch`, Errand's
 * SSRF-guarded fetch (docs/operations.md#fetching-user-supplied-urls) and never
 * with plain `fetch()`: loopback, private, link-local and metadata addresses
 * are refused (also behind a redirect or a DNS name), with `fetch_forbidden`.
 *
 * Fetch failures are classified for the engine's retry policy:
 * - network errors, timeouts (10 s), 429 and 5xx → retryable `document_unreachable`
 *   (429/503 with a Retry-After header also set the next attempt's delay);
 * - 404/410 → `document_not_found`, any other 4xx → `document_rejected`,
 *   a non-text content type → `unsupported_document`, more than 2 MB →
 *   `document_too_large`; a refused target keeps the guard's type
 *   (`fetch_forbidden`, `fetch_invalid_url`, `fetch_redirect_refused`): none of these is retried.
 * A cancel or timeout of the request itself is rethrown as the signal's reason.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RequestFailure, type OperationContext } from 'errand';
import { blockToPlain, parseMarkdown } from './markdown.js';

export const SAMPLES_DIR = fileURLToPath(new URL('../../documents/', import.meta.url));
/** How long one fetch may take, connection to last byte. */
export const FETCH_TIMEOUT_MS = 10_000;
/** Largest document fetched. */
export const MAX_DOCUMENT_BYTES = 2 * 1024 * 1024;

export interface LoadedDocument {
  /** Plain text, paragraphs separated by blank lines. */
  text: string;
  source: { kind: 'text' } | { kind: 'sample'; name: string } | { kind: 'url'; url: string; content_type: string | null };
  bytes: number;
}

/** "market-trends.md" → "market-trends". */
const baseName = (file: string) => file.replace(/\.(md|txt)$/, '');

/** Reads a bundled sample by name ("market-trends" or "market-trends.md"). */
export async function loadSample(name: string, signal?: AbortSignal): Promise<LoadedDocument> {
  const files = await listSamples();
  const names = files.map(baseName);
  // Only names found in the folder listing are read, so "../secrets" cannot escape it.
  const file = files.find((f) => f === name || baseName(f) === name);
  if (file === undefined) {
    throw RequestFailure.nonRetryable(`No sample document named "${name}"; available: ${names.join(', ') || 'none'}`, {
      type: 'document_not_found',
      details: { document: name, available: names },
    });
  }
  const raw = await readFile(join(SAMPLES_DIR, file), { encoding: 'utf8', signal });
  const text = file.endsWith('.md') ? markdownToText(raw) : raw;
  return { text, source: { kind: 'sample', name: baseName(file) }, bytes: Buffer.byteLength(raw) };
}

/** Names of the bundled samples (file names), sorted. */
export async function listSamples(): Promise<string[]> {
  try {
    return (await readdir(SAMPLES_DIR)).filter((f) => /\.(md|txt)$/.test(f)).sort();
  } catch {
    return [];
  }
}

/** The `type` of a failure from `ctx.fetch` (`fetch_unreachable`, `fetch_forbidden`, …), or undefined for anything else. */
function fetchFailureType(err: unknown): string | undefined {
  const type = (err as { type?: unknown } | null)?.type;
  return typeof type === 'string' && type.startsWith('fetch_') ? type : undefined;
}

/** Fetches a text document over http(s) with the guarded `ctx.fetch`; see the file header for how failures are classified. */
export async function fetchDocument(url: string, ctx: Pick<OperationContext, 'fetch' | 'signal'>): Promise<LoadedDocument> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw RequestFailure.nonRetryable('document_url must be an absolute http(s) URL', {
      type: 'invalid_input',
      details: { field: 'document_url' },
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw RequestFailure.nonRetryable('document_url must use http or https', { type: 'invalid_input', details: { field: 'document_url' } });
  }
  const unreachable = (why: string, cause?: unknown, retryAfterMs?: number) =>
    RequestFailure.retryable(`Could not fetch document_url: ${why}`, {
      type: 'document_unreachable',
      details: { url },
      cause,
      retryAfterMs,
    });
  const tooLarge = () =>
    RequestFailure.nonRetryable(`document_url is larger than ${MAX_DOCUMENT_BYTES / 1024 / 1024} MB`, {
      type: 'document_too_large',
      details: { url },
    });
  const rethrow = (err: unknown): never => {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const type = fetchFailureType(err);
    if (type === 'fetch_response_too_large') throw tooLarge();
    if (type === 'fetch_timeout') throw unreachable(`no complete answer within ${FETCH_TIMEOUT_MS / 1000} s`, err);
    if (type === 'fetch_unreachable') throw unreachable((err as Error).message, err);
    // A refused target (fetch_forbidden, fetch_invalid_url, fetch_redirect_refused): not retried, kept as it is.
    throw err;
  };

  let response: Response;
  try {
    response = await ctx.fetch(parsed, {
      timeoutMs: FETCH_TIMEOUT_MS,
      maxResponseBytes: MAX_DOCUMENT_BYTES,
      headers: { accept: 'text/plain, text/markdown, text/html;q=0.9, */*;q=0.1', 'user-agent': 'errand-example/0.1' },
    });
  } catch (err) {
    return rethrow(err);
  }

  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    const details = { url, status: response.status };
    if (response.status === 429 || response.status >= 500) {
      throw unreachable(`the server answered ${response.status}`, undefined, retryAfterMs(response.headers.get('retry-after')));
    }
    if (response.status === 404 || response.status === 410) {
      throw RequestFailure.nonRetryable(`document_url was not found (HTTP ${response.status})`, { type: 'document_not_found', details });
    }
    throw RequestFailure.nonRetryable(`document_url was refused with HTTP ${response.status}`, { type: 'document_rejected', details });
  }

  const contentType = response.headers.get('content-type');
  const mime = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mime !== '' && !/^text\/|^application\/(json|xml|xhtml\+xml|markdown)$/.test(mime)) {
    await response.body?.cancel().catch(() => {});
    throw RequestFailure.nonRetryable(`document_url is ${mime}; only text, Markdown and HTML documents can be analysed`, {
      type: 'unsupported_document',
      details: { url, content_type: mime },
    });
  }

  let raw: string;
  let bytes: number;
  try {
    // ctx.fetch stops the body at maxResponseBytes (fetch_response_too_large) and at the timeout.
    const body = new Uint8Array(await response.arrayBuffer());
    bytes = body.byteLength;
    raw = new TextDecoder('utf-8').decode(body);
  } catch (err) {
    return rethrow(err);
  }
  const text =
    mime === 'text/html' || mime === 'application/xhtml+xml'
      ? htmlToText(raw)
      : /markdown/.test(mime) || /\.md$/i.test(parsed.pathname)
        ? markdownToText(raw)
        : raw;
  return { text, source: { kind: 'url', url, content_type: contentType }, bytes };
}

/** Markdown as plain paragraphs: headings become their own paragraphs; code blocks are left out. */
export function markdownToText(markdown: string): string {
  const paragraphs: string[] = [];
  for (const section of parseMarkdown(markdown)) {
    const heading = section.trail.at(-1);
    if (heading) paragraphs.push(heading);
    for (const block of section.blocks) if (block.kind !== 'code') paragraphs.push(blockToPlain(block));
  }
  return paragraphs.join('\n\n');
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
  mdash: '—',
  ndash: '–',
  hellip: '…',
};

/** Crude HTML to text: drops scripts and styles, turns block elements into paragraph breaks, decodes common entities. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<\/?(p|div|section|article|header|footer|li|ul|ol|h[1-6]|tr|table|blockquote|pre|br)\b[^>]*>/gi, '\n\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, (match, code: string) => {
      if (code.startsWith('#')) {
        const n = code[1]?.toLowerCase() === 'x' ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
        return Number.isFinite(n) && n > 0 && n < 0x110000 ? String.fromCodePoint(n) : match;
      }
      return ENTITIES[code.toLowerCase()] ?? match;
    })
    .replace(/[ \t]+/g, ' ')
    .replace(/\n\s*\n(\s*\n)+/g, '\n\n')
    .trim();
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 3600) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(at - Date.now(), 3_600_000));
}
