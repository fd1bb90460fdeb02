/**
 * analyze-document — the example long-running operation
 * (`POST /v1/operations/analyze-document`, or the resource-style
 * `POST /v1/bots/{bot_id}/actions/analyze-document`).
 *
 * Reads a text document and returns statistics, keywords, named phrases, a
 * lexicon sentiment and an extractive summary. The document is processed in
 * chunks of paragraphs with progress reported and the cancel signal checked
 * between chunks, so a large document shows steady progress and stops
 * promptly when cancelled.
 *
 * Input, exactly one of:
 *   { text: "…" }                         inline text
 *   { document: "market-trends" }          a sample in examples/documents/
 *   { document_url: "https://…" }          fetched with ctx.fetch (text, Markdown or HTML; 10 s, 2 MB;
 *                                          internal addresses refused: fetch_forbidden)
 * Options: summary_sentences (1–20, default 3), max_keywords (1–50, default 10).
 *
 * Result: { summary, summary_sentences, sentiment, sentiment_score, entities,
 *           keywords, names, language, statistics, document }
 */
import { defineOperation, RequestFailure, type OperationContext } from 'errand';
import {
  sentimentOf,
  summarise,
  tallyNames,
  tallySentiment,
  TermTally,
  topKeywords,
  topNames,
  type IndexedSentence,
  type Keyword,
  type SentimentLabel,
} from './lib/analysis.js';
import { fetchDocument, loadSample, type LoadedDocument } from './lib/sources.js';
import {
  countLetters,
  countText,
  describeCounts,
  EMPTY_COUNTS,
  mergeCounts,
  splitParagraphs,
  splitSentences,
  STOPWORDS,
  tokenize,
  type TextStatistics,
} from './lib/text.js';

export interface AnalyzeInput {
  text?: unknown;
  document?: unknown;
  document_url?: unknown;
  summary_sentences?: unknown;
  max_keywords?: unknown;
}

export interface AnalyzeResult {
  summary: string;
  summary_sentences: string[];
  sentiment: SentimentLabel;
  /** −1 (negative) … 1 (positive). */
  sentiment_score: number;
  /** The top keywords as plain words (the seeds' `entities`). */
  entities: string[];
  keywords: Keyword[];
  /** Capitalised names and phrases ("Northwind Analytics"). */
  names: string[];
  /** "en" when the text reads as English (enough common English words), else "unknown". */
  language: 'en' | 'unknown';
  statistics: TextStatistics;
  document: LoadedDocument['source'] & { bytes: number };
}

/** Paragraphs processed between two progress reports / cancellation checks. */
const CHUNK_PARAGRAPHS = 12;
const TOTAL_STEPS = 4;
/** Inline text larger than this is refused (the request body limit usually stops it first). */
const MAX_TEXT_CHARS = 2_000_000;

export default defineOperation<AnalyzeInput, AnalyzeResult>({
  description: 'Statistics, keywords, sentiment and an extractive summary of a text document',

  async run(input, ctx) {
    const options = parseInput(input ?? {});

    await step(ctx, 1, 'Extracting content', 2, describeSource(options));
    const doc = await loadDocument(options, ctx);
    const paragraphs = splitParagraphs(doc.text);
    if (paragraphs.length === 0) {
      throw RequestFailure.nonRetryable('The document has no text to analyse', { type: 'empty_document' });
    }

    // Step 2: one pass over the paragraphs, chunk by chunk, gathering everything later steps need.
    await step(ctx, 2, 'Computing statistics', 10, `Reading ${paragraphs.length} paragraphs`);
    let counts = EMPTY_COUNTS;
    let letters = 0;
    let stopwordHits = 0;
    const tally = new TermTally();
    const sentiment = { positive: 0, negative: 0 };
    const names = new Map<string, number>();
    const sentences: IndexedSentence[] = [];
    let lastPercent = -1;
    for (let start = 0; start < paragraphs.length; start += CHUNK_PARAGRAPHS) {
      ctx.signal.throwIfAborted();
      const chunk = paragraphs.slice(start, start + CHUNK_PARAGRAPHS);
      counts = mergeCounts(counts, countText(chunk.join('\n\n')));
      chunk.forEach((paragraph, offset) => {
        letters += countLetters(paragraph);
        stopwordHits += tokenize(paragraph).filter((t) => STOPWORDS.has(t)).length;
        tally.addParagraph(paragraph);
        tallySentiment(paragraph, sentiment);
        splitSentences(paragraph).forEach((text, position) => {
          sentences.push({ text, paragraph: start + offset, position });
          tallyNames(text, names);
        });
      });
      const done = Math.min(start + CHUNK_PARAGRAPHS, paragraphs.length);
      const percent = 10 + Math.round((60 * done) / paragraphs.length);
      // At most one progress write per percent (a 1 MB text has ~400 chunks), but a
      // turn of the event loop after every chunk, so status reads and cancels are
      // served while a large document is being analysed.
      if (percent !== lastPercent) {
        lastPercent = percent;
        await ctx.progress({ percent, message: `Processed ${done} of ${paragraphs.length} paragraphs` });
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    const statistics = describeCounts({ ...counts, characters: doc.text.length }, letters);

    await step(ctx, 3, 'Extracting keywords', 72, `Ranking ${tally.counts.size} distinct terms`);
    const keywords = topKeywords(tally, options.maxKeywords);
    const mood = sentimentOf(sentiment);

    await step(ctx, 4, 'Summarising', 85, `Scoring ${sentences.length} sentences`);
    const picked = summarise(sentences, tally.weights(), options.summarySentences).map((s) => s.text);

    await ctx.progress({ percent: 100, completed_steps: TOTAL_STEPS, message: 'Analysis complete' });
    return {
      summary: picked.join(' '),
      summary_sentences: picked,
      sentiment: mood.label,
      sentiment_score: mood.score,
      entities: keywords.slice(0, 8).map((k) => k.term),
      keywords,
      names: topNames(names, 10),
      language: statistics.words >= 20 && stopwordHits / statistics.words >= 0.2 ? 'en' : 'unknown',
      statistics,
      document: { ...doc.source, bytes: doc.bytes },
    };
  },
});

interface Options {
  source: { kind: 'text'; text: string } | { kind: 'sample'; name: string } | { kind: 'url'; url: string };
  summarySentences: number;
  maxKeywords: number;
}

/** Validates the input; every problem is a non-retryable `invalid_input` naming the field. */
function parseInput(input: AnalyzeInput): Options {
  const invalid = (field: string, message: string) => RequestFailure.nonRetryable(message, { type: 'invalid_input', details: { field } });
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid(
      '(body)',
      'The input must be an object such as {"text": "…"}, {"document": "market-trends"} or {"document_url": "https://…"}',
    );
  }
  const given = (['text', 'document', 'document_url'] as const).filter((k) => input[k] !== undefined && input[k] !== null);
  if (given.length !== 1) {
    throw invalid(
      given[1] ?? 'text',
      given.length === 0
        ? 'Give the document as text, document (a bundled sample name) or document_url'
        : `Give only one of text, document and document_url (got ${given.join(' and ')})`,
    );
  }
  const integer = (field: 'summary_sentences' | 'max_keywords', min: number, max: number, fallback: number) => {
    const value = input[field];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw invalid(field, `${field} must be a whole number from ${min} to ${max}`);
    return value;
  };
  const summarySentences = integer('summary_sentences', 1, 20, 3);
  const maxKeywords = integer('max_keywords', 1, 50, 10);
  const field = given[0] as 'text' | 'document' | 'document_url';
  const value = input[field];
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, `${field} must be a non-empty string`);
  if (field === 'text' && value.length > MAX_TEXT_CHARS) throw invalid(field, `text must be at most ${MAX_TEXT_CHARS} characters`);
  const source: Options['source'] =
    field === 'text'
      ? { kind: 'text', text: value }
      : field === 'document'
        ? { kind: 'sample', name: value.trim() }
        : { kind: 'url', url: value.trim() };
  return { source, summarySentences, maxKeywords };
}

async function loadDocument(options: Options, ctx: OperationContext): Promise<LoadedDocument> {
  const { source } = options;
  if (source.kind === 'text') return { text: source.text, source: { kind: 'text' }, bytes: Buffer.byteLength(source.text) };
  if (source.kind === 'sample') return loadSample(source.name, ctx.signal);
  // A tenant's URL: fetched with ctx.fetch, under Errand's SSRF guard.
  return fetchDocument(source.url, ctx);
}

function describeSource(options: Options): string {
  const { source } = options;
  if (source.kind === 'text') return `Reading ${source.text.length} characters of inline text`;
  if (source.kind === 'sample') return `Opening sample document "${source.name}"`;
  return `Fetching ${source.url}`;
}

/** Starts step `n`, first letting a cancel or timeout stop the work. */
async function step(ctx: OperationContext, n: number, name: string, percent: number, message: string): Promise<void> {
  ctx.signal.throwIfAborted();
  await ctx.progress({ percent, message, current_step: name, total_steps: TOTAL_STEPS, completed_steps: n - 1 });
}
