/**
 * Small, dependency-free text utilities shared by the example operations:
 * tokenising, stopwords, a light stemmer, sentence and paragraph splitting,
 * syllable counting and document statistics.
 *
 * The stemmer is deliberately light (a handful of suffix rules, not Porter):
 * it only has to map "cancel", "cancels", "cancelled", "cancelling" and
 * "cancellation" to one term, and it is applied to queries and documents
 * alike, so consistency matters more than linguistic accuracy.
 */

/** Common English words that carry no topic: dropped before ranking or keyword extraction. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a about above after again against all also am an and any are aren as at be because been before being below ' +
    'between both but by can cannot could did do does doing don down during each either else etc ever every few ' +
    'for from further get gets got had has have having he her here hers herself him himself his how however i if ' +
    'in into is isn it its itself just let lets like may me might more most much must my myself no nor not now of ' +
    'off on once one only or other ought our ours ourselves out over own per please same shall she should since so ' +
    'some such than that the their theirs them themselves then there these they this those through thus to too ' +
    'under until up upon us use used uses using very via want was we were what when where whether which while who ' +
    'whom whose why will with within without would yet you your yours yourself yourselves s t d ll re ve m'
  ).split(' '),
);

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/** Lower-cased words (letters and digits; inner apostrophes kept, then dropped). */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const match of text.toLowerCase().matchAll(WORD)) out.push(match[0].replace(/['’]/g, ''));
  return out;
}

/** Reduces a lower-case word to a crude stem ("retries" → "retry", "cancelled" → "cancel"). */
export function stem(word: string): string {
  let w = word;
  if (w.length <= 3 || /\d/.test(w)) return w;
  // Plurals and third person.
  if (w.endsWith('ies') && w.length > 4) w = `${w.slice(0, -3)}y`;
  else if (w.endsWith('sses')) w = w.slice(0, -2);
  else if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  // Verb and noun endings, only when a reasonable root remains.
  for (const suffix of ['ations', 'ation', 'ments', 'ment', 'ings', 'ing', 'ied', 'ed', 'ly']) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3) {
      w = suffix === 'ied' ? `${w.slice(0, -3)}y` : w.slice(0, -suffix.length);
      break;
    }
  }
  // "cancell" → "cancel", "stopp" → "stop".
  if (/([b-df-hj-np-tv-z])\1$/.test(w) && !w.endsWith('ss')) w = w.slice(0, -1);
  // "configure"/"configur", "retrieve"/"retriev" agree once the final e goes.
  if (w.endsWith('e') && w.length > 4) w = w.slice(0, -1);
  return w;
}

/** The index terms of a text: tokens minus stopwords and one-letter words, stemmed. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const token of tokenize(text)) {
    if (token.length < 2 || STOPWORDS.has(token)) continue;
    out.push(stem(token));
  }
  return out;
}

/** Splits prose into paragraphs at blank lines; whitespace inside a paragraph is collapsed. */
export function splitParagraphs(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n\s*\n/)
    .map((p) => p.replace(/\s+/g, ' ').trim())
    .filter((p) => p.length > 0);
}

// Abbreviations whose trailing period does not end a sentence.
const ABBREVIATIONS = new Set(['e.g', 'i.e', 'etc', 'vs', 'mr', 'mrs', 'ms', 'dr', 'prof', 'inc', 'ltd', 'co', 'fig', 'approx']);

/**
 * Splits a paragraph into sentences at `.`, `!` or `?` followed by a space and
 * an upper-case letter, digit or quote — skipping common abbreviations and
 * decimals ("3.5"). Good enough for reports and notes; not for poetry.
 */
export function splitSentences(text: string): string[] {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return [];
  const out: string[] = [];
  let start = 0;
  const boundary = /[.!?]+["”’)]*\s+(?=["“‘(]?[\p{Lu}\p{N}])/gu;
  for (const match of flat.matchAll(boundary)) {
    const end = match.index + match[0].length;
    const lastWord = /([\p{L}.]+)[.!?]+["”’)]*\s+$/u.exec(flat.slice(start, end))?.[1]?.toLowerCase() ?? '';
    if (ABBREVIATIONS.has(lastWord.replace(/\.$/, ''))) continue;
    out.push(flat.slice(start, end).trim());
    start = end;
  }
  const rest = flat.slice(start).trim();
  if (rest !== '') out.push(rest);
  return out;
}

/** Estimated syllables in one word (vowel groups, minus a silent final e; at least 1). */
export function countSyllables(word: string): number {
  const w = word.toLowerCase().replace(/[^a-z]/g, '');
  if (w.length === 0) return 0;
  if (w.length <= 3) return 1;
  const trimmed = w.replace(/(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$/, '').replace(/^y/, '');
  const groups = trimmed.match(/[aeiouy]{1,2}/g);
  return Math.max(1, groups?.length ?? 1);
}

/** Counts of one piece of text; they add up across pieces (see {@link mergeCounts}). */
export interface TextCounts {
  characters: number;
  words: number;
  sentences: number;
  paragraphs: number;
  syllables: number;
}

/** Counts a block of text (one or more paragraphs). */
export function countText(text: string): TextCounts {
  const paragraphs = splitParagraphs(text);
  let words = 0;
  let sentences = 0;
  let syllables = 0;
  for (const paragraph of paragraphs) {
    sentences += splitSentences(paragraph).length;
    for (const token of tokenize(paragraph)) {
      words += 1;
      syllables += countSyllables(token);
    }
  }
  return { characters: text.length, words, sentences, paragraphs: paragraphs.length, syllables };
}

export function mergeCounts(a: TextCounts, b: TextCounts): TextCounts {
  return {
    characters: a.characters + b.characters,
    words: a.words + b.words,
    sentences: a.sentences + b.sentences,
    paragraphs: a.paragraphs + b.paragraphs,
    syllables: a.syllables + b.syllables,
  };
}

export const EMPTY_COUNTS: TextCounts = Object.freeze({ characters: 0, words: 0, sentences: 0, paragraphs: 0, syllables: 0 });

/** Reading speed assumed for `reading_time_seconds` (adult silent reading of non-fiction). */
export const WORDS_PER_MINUTE = 230;

export interface TextStatistics extends Omit<TextCounts, 'syllables'> {
  average_sentence_length: number;
  average_word_length: number;
  reading_time_seconds: number;
  /** Flesch reading ease: 90–100 very easy, 60–70 plain English, below 30 very hard. */
  flesch_reading_ease: number;
}

/** Derived statistics from counts; `letters` is the number of word characters, for the average word length. */
export function describeCounts(counts: TextCounts, letters: number): TextStatistics {
  const { characters, words, sentences, paragraphs, syllables } = counts;
  const perSentence = sentences === 0 ? 0 : words / sentences;
  const perWord = words === 0 ? 0 : syllables / words;
  const flesch = words === 0 ? 0 : 206.835 - 1.015 * perSentence - 84.6 * perWord;
  return {
    characters,
    words,
    sentences,
    paragraphs,
    average_sentence_length: round(perSentence, 1),
    average_word_length: words === 0 ? 0 : round(letters / words, 1),
    reading_time_seconds: Math.round((words / WORDS_PER_MINUTE) * 60),
    flesch_reading_ease: round(flesch, 1),
  };
}

/** Number of letters and digits in a text (for the average word length). */
export function countLetters(text: string): number {
  return text.match(/[\p{L}\p{N}]/gu)?.length ?? 0;
}

export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
