/**
 * Okapi BM25 ranking over a small in-memory collection.
 *
 * score(q, d) = Σ over query terms t of
 *   idf(t) · tf(t,d) · (k1 + 1) / (tf(t,d) + k1 · (1 − b + b · |d| / avgdl))
 * with idf(t) = ln(1 + (N − df + 0.5) / (df + 0.5)), always positive.
 *
 * k1 = 1.2 and b = 0.75 are the usual defaults; passages here are short
 * (a paragraph or two), so length normalisation matters less than term
 * rarity. Everything is built once and reused (see the assistant's cache).
 */
import { stem, terms, tokenize } from './text.js';

export interface Bm25Options {
  /** Term-frequency saturation. @defaultValue 1.2 */
  k1?: number;
  /** Length normalisation, 0–1. @defaultValue 0.75 */
  b?: number;
}

export interface Bm25Hit<T> {
  item: T;
  score: number;
  /** Query terms (stems) found in the item. */
  matched: string[];
  /**
   * Share of the query's weight the item covers, 0–1: idf of the matched terms
   * over idf of all query terms (a term found nowhere weighs as much as the
   * rarest possible term). Low coverage means only a side word matched.
   */
  coverage: number;
}

interface Entry<T> {
  item: T;
  tf: Map<string, number>;
  length: number;
}

export class Bm25Index<T> {
  private readonly entries: Entry<T>[] = [];
  private readonly df = new Map<string, number>();
  private totalLength = 0;
  private readonly k1: number;
  private readonly b: number;

  constructor(options: Bm25Options = {}) {
    this.k1 = options.k1 ?? 1.2;
    this.b = options.b ?? 0.75;
  }

  /** Number of indexed items. */
  get size(): number {
    return this.entries.length;
  }

  /** Indexes `item` under the terms of `text` (already-tokenised terms may be passed instead). */
  add(item: T, text: string | readonly string[]): void {
    const list = typeof text === 'string' ? terms(text) : text;
    const tf = new Map<string, number>();
    for (const term of list) tf.set(term, (tf.get(term) ?? 0) + 1);
    for (const term of tf.keys()) this.df.set(term, (this.df.get(term) ?? 0) + 1);
    this.entries.push({ item, tf, length: list.length });
    this.totalLength += list.length;
  }

  /** Inverse document frequency of a (stemmed) term; 0 for terms never seen. */
  idf(term: string): number {
    const df = this.df.get(term) ?? 0;
    return df === 0 ? 0 : this.idfOf(df);
  }

  private idfOf(df: number): number {
    const n = this.entries.length;
    return Math.log(1 + (n - df + 0.5) / (df + 0.5));
  }

  /**
   * The query's terms, plus compounds of adjacent words that the index knows:
   * "times out" also looks for "timeout", "set up" for "setup", "web hook" for "webhook".
   */
  queryTerms(query: string): string[] {
    const found = new Set(terms(query));
    const words = tokenize(query);
    for (let i = 0; i + 1 < words.length; i++) {
      const a = words[i] ?? '';
      const b = words[i + 1] ?? '';
      for (const compound of [stem(a + b), stem(a) + b, stem(a) + stem(b)]) {
        if (this.df.has(compound)) found.add(compound);
      }
    }
    return [...found];
  }

  /** The best `limit` items for `query`, best first; items matching no query term are left out. */
  search(query: string, limit = 5): Bm25Hit<T>[] {
    const queryTerms = this.queryTerms(query);
    if (queryTerms.length === 0 || this.entries.length === 0) return [];
    const avgdl = this.totalLength / this.entries.length || 1;
    const weightOf = (term: string) => this.idfOf(this.df.get(term) ?? 0);
    const queryWeight = queryTerms.reduce((sum, term) => sum + weightOf(term), 0);
    const hits: Bm25Hit<T>[] = [];
    for (const entry of this.entries) {
      let score = 0;
      const matched: string[] = [];
      for (const term of queryTerms) {
        const tf = entry.tf.get(term);
        if (tf === undefined) continue;
        matched.push(term);
        const norm = tf + this.k1 * (1 - this.b + (this.b * entry.length) / avgdl);
        score += (this.idf(term) * tf * (this.k1 + 1)) / norm;
      }
      if (score > 0) {
        const coverage = Math.min(1, matched.reduce((sum, term) => sum + weightOf(term), 0) / queryWeight);
        hits.push({ item: entry.item, score, matched, coverage });
      }
    }
    hits.sort((x, y) => y.score - x.score);
    return hits.slice(0, limit);
  }
}
