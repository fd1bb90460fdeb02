/**
 * Composes an extractive answer from ranked passages: no text is invented,
 * every sentence is quoted from the documentation and attributed to its file
 * and heading.
 *
 * The answer is built as a list of pieces (a header, a sentence, a list item,
 * a code block) whose concatenation is exactly the answer text, so the
 * assistant can stream them one by one with `ctx.emit` and a client that
 * joins the chunks gets the same text as `result.text`.
 */
import type { Bm25Hit } from './bm25.js';
import type { Passage } from './corpus.js';
import { blockToPlain } from './markdown.js';
import { splitSentences, terms } from './text.js';

export interface AnswerSource {
  file: string;
  heading: string;
  score: number;
}

export interface ComposedAnswer {
  pieces: string[];
  sources: AnswerSource[];
}

export interface ComposeOptions {
  /** Most passages quoted. @defaultValue 3 */
  maxPassages?: number;
  /** A passage is quoted only if its score is at least this fraction of the best one's. @defaultValue 0.45 */
  relativeCutoff?: number;
  /** …and it covers at least this share of the question's weight (see Bm25Hit.coverage). @defaultValue 0.35 */
  minCoverage?: number;
  /** Characters quoted per passage, roughly. @defaultValue 700 */
  budget?: number;
  /** Inverse document frequency of a stemmed term (weights sentences inside a passage). */
  idf: (term: string) => number;
  /** Number of files searched (for the "not found" answer). */
  filesSearched: number;
  /** The question's stemmed terms as the index searched them. @defaultValue terms(question) */
  queryTerms?: readonly string[];
}

interface Unit {
  text: string;
  kind: 'sentence' | 'item' | 'block';
  /** Ends its paragraph / list / block: followed by a blank line rather than a space. */
  last: boolean;
  weight: number;
  /** A table row: the index of its table's header row, quoted along with it. */
  header?: number;
}

/** Builds the answer for `question` from `hits` (best first). */
export function composeAnswer(question: string, hits: readonly Bm25Hit<Passage>[], options: ComposeOptions): ComposedAnswer {
  const topic = quoteTopic(question);
  // One passage per section (the best): a long section cut in two would otherwise be quoted twice.
  const sections = new Set<string>();
  const relevant = hits.filter((h) => {
    const key = `${h.item.file}\u0000${h.item.heading}`;
    if (h.coverage < (options.minCoverage ?? 0.35) || sections.has(key)) return false;
    sections.add(key);
    return true;
  });
  const best = relevant[0]?.score ?? 0;
  const chosen = relevant.filter((h) => h.score >= best * (options.relativeCutoff ?? 0.45)).slice(0, options.maxPassages ?? 3);
  if (chosen.length === 0) return { pieces: [notFound(topic, options.filesSearched)], sources: [] };

  const wanted = new Set(options.queryTerms ?? terms(question));
  const pieces: string[] = [`Here is what the Errand documentation says about “${topic}”.\n\n`];
  const sources: AnswerSource[] = [];
  for (const hit of chosen) {
    const units = selectUnits(unitsOf(hit.item, wanted, options.idf), options.budget ?? 700);
    if (units.length === 0) continue;
    pieces.push(`From ${hit.item.file}, “${hit.item.heading}”:\n`);
    for (const unit of units) pieces.push(unit.text + (unit.last ? '\n\n' : unit.kind === 'item' ? '\n' : ' '));
    sources.push({ file: hit.item.file, heading: hit.item.heading, score: Math.round(hit.score * 1000) / 1000 });
  }
  if (sources.length === 0) return { pieces: [notFound(topic, options.filesSearched)], sources: [] };
  pieces.push(`Sources: ${sources.map((s) => `${s.file} (${s.heading.split(' › ').at(-1)})`).join('; ')}.`);
  return { pieces, sources };
}

function notFound(topic: string, files: number): string {
  if (files === 0) {
    return `I could not find anything about “${topic}”: no documentation was found to search (README.md and docs/ are missing).`;
  }
  return `I could not find anything about “${topic}” in the Errand documentation (${files} file${files === 1 ? '' : 's'} searched). Try other words, or ask about requests, operations, configuration, webhooks or cancelling.`;
}

/** The question trimmed to one line of at most 80 characters, for quoting back. */
function quoteTopic(question: string): string {
  const flat = question
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[?.!]+$/, '');
  return flat.length > 80 ? `${flat.slice(0, 77)}…` : flat;
}

/** A passage as answer units: prose by sentence, lists by item, tables by row, code whole. */
function unitsOf(passage: Passage, wanted: ReadonlySet<string>, idf: (term: string) => number): Unit[] {
  const weigh = (text: string) => {
    let weight = 0;
    for (const term of new Set(terms(text))) if (wanted.has(term)) weight += idf(term);
    return weight;
  };
  const units: Unit[] = [];
  for (const block of passage.blocks) {
    const plain = blockToPlain(block);
    if (block.kind === 'prose') {
      const sentences = splitSentences(plain);
      sentences.forEach((s, i) => units.push({ text: s, kind: 'sentence', last: i === sentences.length - 1, weight: weigh(s) }));
    } else if (block.kind === 'list') {
      const items = plain.split(/\n(?=- )/);
      items.forEach((item, i) => units.push({ text: item, kind: 'item', last: i === items.length - 1, weight: weigh(item) }));
    } else if (block.kind === 'table') {
      const rows = plain.split('\n');
      const header = units.length;
      rows.forEach((row, i) =>
        units.push({
          text: row,
          kind: 'item',
          last: i === rows.length - 1,
          weight: i === 0 ? 0 : weigh(row),
          header: i === 0 ? undefined : header,
        }),
      );
    } else {
      units.push({ text: plain, kind: 'block', last: true, weight: weigh(plain) });
    }
  }
  return units;
}

/**
 * Keeps the passage whole when it fits the budget; otherwise the opening unit
 * (context), the units that mention the question's terms (heaviest first),
 * a code block right after a kept unit (the example that goes with it) and
 * the header of a kept table row — in their original order.
 */
function selectUnits(units: Unit[], budget: number): Unit[] {
  const total = units.reduce((n, u) => n + u.text.length, 0);
  if (total <= budget) return units;
  const keep = new Set<number>();
  let used = 0;
  const take = (i: number) => {
    const unit = units[i];
    if (unit === undefined || keep.has(i) || used + unit.text.length > budget * 1.5) return;
    keep.add(i);
    used += unit.text.length;
    if (unit.header !== undefined) take(unit.header);
  };
  take(0);
  const ranked = units
    .map((u, i) => ({ u, i }))
    .filter(({ u }) => u.weight > 0)
    .sort((a, b) => b.u.weight - a.u.weight);
  for (const { i } of ranked) {
    if (used >= budget) break;
    take(i);
    if (units[i + 1]?.kind === 'block') take(i + 1);
  }
  const indexes = [...keep].sort((a, b) => a - b);
  // A unit followed by a gap (or by nothing) closes its paragraph in the quote.
  return indexes.map((i, k) => {
    const unit = units[i] as Unit;
    const next = indexes[k + 1];
    return next === i + 1 ? unit : { ...unit, last: true };
  });
}
