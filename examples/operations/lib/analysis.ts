/**
 * Document analysis building blocks: keyword extraction, named-phrase
 * spotting, lexicon sentiment and extractive summarisation. Each works on
 * counts that can be accumulated chunk by chunk ({@link TermTally},
 * {@link SentimentTally}) so a long document is processed in pieces with
 * progress and cancellation between them.
 *
 * Keyword score = count × (1 + ln(1 + paragraphs it appears in)) × damping,
 * where damping is 0.35 for everyday words (a tiny built-in "background
 * English" list) and 1 otherwise: a word that recurs across the document and
 * is not generic ranks highest. This is frequency-minus-stopwords with a
 * nudge, not true TF-IDF, which would need a reference corpus.
 */
import { stem, STOPWORDS, terms, tokenize } from './text.js';

/** Everyday words that are not stopwords but rarely say what a document is about. */
const EVERYDAY = new Set(
  (
    'new time year years day days way make made take takes first last good well many part number week month ' +
    'people thing things work works working see seen say said know need needs show shows give given keep ' +
    'come comes look able case lot still even back long high low next early late often whole end example ' +
    'different important general overall across around based include includes including percent million ' +
    'two three four five six seven eight nine ten hundred thousand'
  )
    .split(' ')
    .map(stem),
);

/** Stems → counts, the paragraphs each appeared in, and the commonest surface form. */
export class TermTally {
  readonly counts = new Map<string, number>();
  private readonly spread = new Map<string, number>();
  private readonly forms = new Map<string, Map<string, number>>();

  /** Adds one paragraph. */
  addParagraph(paragraph: string): void {
    const seen = new Set<string>();
    for (const token of tokenize(paragraph)) {
      if (token.length < 3 || STOPWORDS.has(token) || /^\d+$/.test(token)) continue;
      const s = stem(token);
      this.counts.set(s, (this.counts.get(s) ?? 0) + 1);
      let forms = this.forms.get(s);
      if (!forms) this.forms.set(s, (forms = new Map()));
      forms.set(token, (forms.get(token) ?? 0) + 1);
      if (!seen.has(s)) {
        seen.add(s);
        this.spread.set(s, (this.spread.get(s) ?? 0) + 1);
      }
    }
  }

  /** The surface word shown for a stem: the form used most often (shortest on ties). */
  formOf(s: string): string {
    let best = s;
    let bestCount = -1;
    for (const [form, count] of this.forms.get(s) ?? []) {
      if (count > bestCount || (count === bestCount && form.length < best.length)) {
        best = form;
        bestCount = count;
      }
    }
    return best;
  }

  /** Keyword weight per stem (see the file header). */
  weights(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [s, count] of this.counts) {
      const damping = EVERYDAY.has(s) ? 0.35 : 1;
      out.set(s, count * (1 + Math.log(1 + (this.spread.get(s) ?? 1))) * damping);
    }
    return out;
  }
}

export interface Keyword {
  term: string;
  count: number;
  score: number;
}

/** The `limit` best keywords; words seen once are skipped unless the document is too short to repeat itself. */
export function topKeywords(tally: TermTally, limit: number): Keyword[] {
  const weights = tally.weights();
  const repeated = [...tally.counts.values()].some((c) => c >= 2);
  return [...weights]
    .filter(([s]) => !repeated || (tally.counts.get(s) ?? 0) >= 2)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([s, score]) => ({ term: tally.formOf(s), count: tally.counts.get(s) ?? 0, score: Math.round(score * 100) / 100 }));
}

// ---- Sentiment ---------------------------------------------------------------

const POSITIVE = new Set(
  (
    'good great excellent strong stronger strength growth grow grew improve improvement gain benefit success ' +
    'successful positive optimistic optimism record robust resilient efficient efficiency happy love best better ' +
    'win opportunity profit profitable rise rising exceed outperform stable reliable fast easy clear solid healthy ' +
    'boost accelerate thrive favourable favorable welcome confident confidence recover recovery momentum ' +
    'satisfied delight advantage progress simple safe secure upside expand expansion'
  )
    .split(' ')
    .map(stem),
);

const NEGATIVE = new Set(
  (
    'bad poor weak weaker weakness decline decrease loss lose lost risk fail failure problem issue concern ' +
    'negative pessimistic slow slowdown drop fell fall crash error bug difficult hard worse worst threat ' +
    'uncertain uncertainty volatile volatility shortage delay downturn recession layoff hurt damage broken outage ' +
    'disappoint disappointing struggle overpriced slump inflation deficit churn complaint angry ' +
    'confusing fragile unsafe vulnerable downside shrink contraction'
  )
    .split(' ')
    .map(stem),
);

const NEGATORS = new Set([
  'not',
  'no',
  'never',
  'without',
  'hardly',
  'nor',
  'isnt',
  'arent',
  'wasnt',
  'werent',
  'dont',
  'doesnt',
  'didnt',
  'cannot',
  'cant',
  'wont',
]);
/** Words that turn a following negative word into good news: "fixed a crash", "prevents failures". */
const REMEDIES = new Set([
  'fix',
  'fixed',
  'fixes',
  'prevent',
  'prevents',
  'prevented',
  'avoid',
  'avoids',
  'avoided',
  'resolve',
  'resolved',
  'resolves',
  'reduce',
  'reduces',
  'reduced',
  'eliminate',
  'eliminates',
]);

export type SentimentLabel = 'POSITIVE' | 'NEGATIVE' | 'NEUTRAL';

export interface SentimentTally {
  positive: number;
  negative: number;
}

/**
 * Counts lexicon hits in a text. A negator within the two previous words flips
 * a hit ("not good"); a remedy there turns a negative hit positive ("fixed a crash").
 */
export function tallySentiment(text: string, into: SentimentTally = { positive: 0, negative: 0 }): SentimentTally {
  const tokens = tokenize(text);
  tokens.forEach((token, i) => {
    const s = stem(token);
    const polarity = POSITIVE.has(s) ? 1 : NEGATIVE.has(s) ? -1 : 0;
    if (polarity === 0) return;
    const before = [tokens[i - 1] ?? '', tokens[i - 2] ?? ''];
    const negated = before.some((w) => NEGATORS.has(w)) || (polarity < 0 && before.some((w) => REMEDIES.has(w)));
    if (polarity > 0 !== negated) into.positive += 1;
    else into.negative += 1;
  });
  return into;
}

/**
 * Polarity in −1…1: (positive − negative) / (positive + negative + 4). The +4
 * keeps one stray word (score 0.2) from deciding a document; a label needs
 * at least ±0.25, i.e. two more hits one way than the other in a short text.
 */
export function sentimentOf(tally: SentimentTally): { label: SentimentLabel; score: number } {
  const score = (tally.positive - tally.negative) / (tally.positive + tally.negative + 4);
  const label: SentimentLabel = score >= 0.25 ? 'POSITIVE' : score <= -0.25 ? 'NEGATIVE' : 'NEUTRAL';
  return { label, score: Math.round(score * 100) / 100 };
}

// ---- Named phrases -------------------------------------------------------------

/**
 * Capitalised phrases ("Northwind Analytics", "Q3", "Lisbon") counted per
 * sentence: a multi-word phrase anywhere, a single word only when it does not
 * start the sentence (where every word is capitalised).
 */
export function tallyNames(sentence: string, into: Map<string, number>): void {
  const words = sentence.split(/\s+/);
  let run: string[] = [];
  let runStart = 0;
  const close = () => {
    const phrase = run.join(' ');
    const single = run.length === 1;
    if (run.length > 0 && !(single && runStart === 0) && !run.every((w) => STOPWORDS.has(w.toLowerCase()))) {
      into.set(phrase, (into.get(phrase) ?? 0) + 1);
    }
    run = [];
  };
  words.forEach((raw, i) => {
    const word = raw.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    const capitalised = /^\p{Lu}[\p{L}\p{N}&-]*$/u.test(word) && !(i === 0 && STOPWORDS.has(word.toLowerCase()));
    if (capitalised) {
      if (run.length === 0) runStart = i;
      run.push(word);
      if (/[,.;:!?)]$/.test(raw)) close(); // punctuation ends a phrase
    } else {
      close();
    }
  });
  close();
}

/** Names seen at least twice (or multi-word names seen once), most frequent first. */
export function topNames(names: Map<string, number>, limit: number): string[] {
  return [...names]
    .filter(([name, count]) => count >= 2 || name.includes(' '))
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([name]) => name);
}

// ---- Summary -------------------------------------------------------------------

export interface IndexedSentence {
  text: string;
  /** Paragraph number from 0, and position inside it from 0. */
  paragraph: number;
  position: number;
}

/**
 * Picks `count` sentences. Each scores the summed keyword weight of its
 * distinct terms divided by √(its term count), so long sentences do not win
 * by length alone; the first candidate of the document gets +30% of the best
 * score and the first of each paragraph +10% (openings tend to state the
 * point). Candidates have at least 5 words and end like a sentence, which
 * leaves out headings and titles — unless nothing else qualifies.
 * Returned in document order.
 */
export function summarise(sentences: readonly IndexedSentence[], weights: ReadonlyMap<string, number>, count: number): IndexedSentence[] {
  const scored = sentences.map((sentence, order) => {
    const list = terms(sentence.text);
    let raw = 0;
    for (const t of new Set(list)) raw += weights.get(t) ?? 0;
    const candidate = tokenize(sentence.text).length >= 5 && /[.!?]["”’)]*$/.test(sentence.text);
    return { sentence, order, candidate, score: raw / Math.sqrt(Math.max(list.length, 1)) };
  });
  const candidates = scored.some((s) => s.candidate) ? scored.filter((s) => s.candidate) : scored;
  const best = Math.max(0, ...candidates.map((s) => s.score));
  const openedParagraphs = new Set<number>();
  candidates.forEach((s, i) => {
    if (i === 0) s.score += 0.3 * best;
    else if (!openedParagraphs.has(s.sentence.paragraph)) s.score += 0.1 * best;
    openedParagraphs.add(s.sentence.paragraph);
  });
  return [...candidates]
    .sort((a, b) => b.score - a.score || a.order - b.order)
    .slice(0, count)
    .sort((a, b) => a.order - b.order)
    .map((s) => s.sentence);
}
