/**
 * Unit tests of the example operations' pure helpers (examples/operations/lib
 * and triage.mjs's named exports), and of the operations themselves run with a
 * hand-made context: progress steps, streamed output, cancellation.
 *
 * The examples live outside this package's rootDir, so they are imported by
 * URL (a static import would pull them into `tsc -p packages/server`); the
 * interfaces below type just what the tests use.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { OperationContext, OperationDefinition, Progress } from '../../src/index.js';

const EXAMPLES = new URL('../../../../examples/operations/', import.meta.url);
async function load<T>(path: string): Promise<T> {
  return (await import(new URL(path, EXAMPLES).href)) as T;
}

interface TextLib {
  stem(word: string): string;
  tokenize(text: string): string[];
  terms(text: string): string[];
  splitSentences(text: string): string[];
  splitParagraphs(text: string): string[];
  countSyllables(word: string): number;
  countText(text: string): { characters: number; words: number; sentences: number; paragraphs: number; syllables: number };
  describeCounts(counts: ReturnType<TextLib['countText']>, letters: number): Record<string, number>;
}
interface Hit {
  item: { file: string; heading: string; blocks: unknown[] };
  score: number;
  matched: string[];
  coverage: number;
}
interface Bm25 {
  add(item: unknown, text: string): void;
  search(query: string, limit?: number): Hit[];
  idf(term: string): number;
  queryTerms(query: string): string[];
}
interface SearchLibs {
  Bm25Index: new () => Bm25;
  parseMarkdown(source: string): { trail: string[]; level: number; blocks: { kind: string; text: string }[] }[];
  plainInline(text: string): string;
  passagesOf(file: string, markdown: string): Hit['item'][];
  rankPassages(corpus: { key: string; files: string[]; passages: Hit['item'][]; index: Bm25 }, query: string, limit: number): Hit[];
  passageIndexText(passage: Hit['item']): string;
  listMarkdownFiles(options: { root: string; files: string[]; dirs: string[] }): Promise<{ name: string }[]>;
  composeAnswer(
    question: string,
    hits: Hit[],
    options: { idf: (t: string) => number; filesSearched: number; queryTerms?: string[] },
  ): {
    pieces: string[];
    sources: { file: string; heading: string; score: number }[];
  };
}
interface AnalysisLib {
  TermTally: new () => { addParagraph(p: string): void; weights(): Map<string, number> };
  topKeywords(tally: InstanceType<AnalysisLib['TermTally']>, limit: number): { term: string; count: number; score: number }[];
  tallySentiment(text: string): { positive: number; negative: number };
  sentimentOf(tally: { positive: number; negative: number }): { label: string; score: number };
  tallyNames(sentence: string, into: Map<string, number>): void;
  summarise(
    sentences: { text: string; paragraph: number; position: number }[],
    weights: Map<string, number>,
    count: number,
  ): { text: string }[];
  htmlToText(html: string): string;
  markdownToText(markdown: string): string;
  loadSample(name: string): Promise<{ text: string; source: { kind: string; name?: string } }>;
}
interface Issue {
  number: number | null;
  title: string;
  body: string;
  author: string | null;
  url: string | null;
  labels: string[];
}
interface TriageLib {
  findIssueEvent(input: unknown): { skip?: string; issue?: Issue; repository?: string | null; action?: string };
  classifyIssue(issue: Issue): { labels: string[]; scores: Record<string, number> };
  reportHints(issue: Issue): Record<string, boolean | number>;
  estimatePriority(issue: Issue, labels: string[], hints: Record<string, boolean | number>): { level: string; reason: string };
  titleTerms(title: string): Set<string>;
  similarity(a: Set<string>, b: Set<string>): number;
}

const text = await load<TextLib>('lib/text.ts');
const search: SearchLibs = {
  ...(await load<Pick<SearchLibs, 'Bm25Index'>>('lib/bm25.ts')),
  ...(await load<Pick<SearchLibs, 'parseMarkdown' | 'plainInline'>>('lib/markdown.ts')),
  ...(await load<Pick<SearchLibs, 'passagesOf' | 'passageIndexText' | 'listMarkdownFiles' | 'rankPassages'>>('lib/corpus.ts')),
  ...(await load<Pick<SearchLibs, 'composeAnswer'>>('lib/answer.ts')),
};
const analysis: AnalysisLib = { ...(await load<AnalysisLib>('lib/analysis.ts')), ...(await load<AnalysisLib>('lib/sources.ts')) };
const triage = await load<TriageLib>('triage.mjs');

describe('text helpers', () => {
  test('the stemmer maps word families to one term', () => {
    const same = (words: string[]) => assert.equal(new Set(words.map(text.stem)).size, 1, words.join(', '));
    same(['cancel', 'cancels', 'cancelled', 'cancelling', 'cancellation']);
    same(['retry', 'retries', 'retried']);
    same(['configure', 'configured', 'configuration']);
    same(['request', 'requests', 'requested']);
    assert.equal(text.stem('status'), 'status');
  });

  test('tokenize lower-cases and keeps digits; terms drop stopwords', () => {
    assert.deepEqual(text.tokenize("Don't stop: it's 3x faster!"), ['dont', 'stop', 'its', '3x', 'faster']);
    assert.deepEqual(text.terms('How do I cancel the requests?'), ['cancel', 'request']);
  });

  test('sentences split at terminal punctuation, not at abbreviations or decimals', () => {
    assert.deepEqual(text.splitSentences('Version 3.5 shipped, e.g. to Lisbon. It works! Does it? Yes.'), [
      'Version 3.5 shipped, e.g. to Lisbon.',
      'It works!',
      'Does it?',
      'Yes.',
    ]);
    assert.deepEqual(text.splitParagraphs('one\ntwo\n\n\nthree  \r\n\r\nfour'), ['one two', 'three', 'four']);
  });

  test('syllables and statistics', () => {
    assert.deepEqual(['cat', 'reading', 'table', 'statistics', 'released'].map(text.countSyllables), [1, 2, 2, 3, 2]);
    const counts = text.countText('The cat sat on the mat. It was happy!\n\nThe end came soon.');
    assert.deepEqual(counts, { characters: 57, words: 13, sentences: 3, paragraphs: 2, syllables: 14 });
    const stats = text.describeCounts(counts, 40);
    assert.equal(stats.average_sentence_length, 4.3);
    assert.equal(stats.reading_time_seconds, 3);
    assert.ok((stats.flesch_reading_ease ?? 0) > 90, 'short words and sentences read very easily');
  });
});

describe('retrieval', () => {
  test('BM25 ranks the passage with the rarer matching terms first', () => {
    const index = new search.Bm25Index();
    index.add('a', 'Requests are stored in SQLite. Requests have a status.');
    index.add('b', 'To cancel a request, send DELETE to its status resource.');
    index.add('c', 'Webhooks deliver the result of a request.');
    const hits = index.search('how to cancel a request', 3);
    assert.equal(hits[0]?.item, 'b');
    assert.deepEqual(hits[0]?.matched.sort(), ['cancel', 'request']);
    assert.equal(hits[0]?.coverage, 1);
    assert.deepEqual(index.search('banana'), []);
    assert.deepEqual(index.search('the and of'), []);
    // A word found nowhere weighs more than any matched one: a side match covers little.
    assert.ok((index.search('cancel kubernetes')[0]?.coverage ?? 1) < 0.4);
  });

  test('adjacent query words also match their compound ("times out" → timeout)', () => {
    const index = new search.Bm25Index();
    index.add('timeouts', 'The task_timeout fails a request that runs too long.');
    index.add('other', 'Progress is reported in percent.');
    assert.ok(index.queryTerms('what if a task times out').includes('timeout'));
    assert.equal(index.search('what if a task times out')[0]?.item, 'timeouts');
  });

  test('Markdown becomes sections of typed blocks', () => {
    const sections = search.parseMarkdown(
      [
        '# Guide',
        'Intro text.',
        '',
        '## Cancel',
        'Send **DELETE**.',
        '- one',
        '- two',
        '',
        '```bash',
        '# not a heading',
        '```',
        '',
        '| a | b |',
        '|---|---|',
        '| 1 | 2 |',
      ].join('\n'),
    );
    assert.deepEqual(
      sections.map((s) => s.trail),
      [['Guide'], ['Guide', 'Cancel']],
    );
    assert.deepEqual(
      sections[1]?.blocks.map((b) => b.kind),
      ['prose', 'list', 'code', 'table'],
    );
    assert.equal(search.plainInline('Send `Bearer <key>` to [the API](api.md), **now**<br>'), 'Send Bearer <key> to the API, now');
  });

  test('long sections are cut into passages; a code block stays with its introduction', () => {
    const para = 'Words about requests and their lifecycle. '.repeat(12);
    const passages = search.passagesOf('docs/x.md', `# X\n\n${para}\n\n${para}\n\n${para}\n\n\`\`\`bash\ncurl x\n\`\`\``);
    assert.ok(passages.length >= 2);
    assert.equal(passages.at(-1)?.blocks.at(-1) !== undefined, true);
    assert.match(JSON.stringify(passages.at(-1)?.blocks), /curl x/);
    assert.ok(passages.every((p) => p.file === 'docs/x.md' && p.heading === 'X'));
  });

  test('a passage whose heading the question names ranks first', () => {
    const index = new search.Bm25Index();
    const passages = search.passagesOf(
      'README.md',
      '# Errand\n\nA server for long-running work.\n\n## Configuration\n\nErrand reads errand.yaml; Errand config says where Errand stores data.',
    );
    for (const passage of passages) index.add(passage, search.passageIndexText(passage));
    assert.equal(
      index.search('What is Errand?')[0]?.item.heading,
      'Errand › Configuration',
      'plain BM25 prefers the section that repeats the word',
    );
    const ranked = search.rankPassages({ key: '', files: ['README.md'], passages, index }, 'What is Errand?', 2);
    assert.equal(ranked[0]?.item.heading, 'Errand');
  });

  test('missing documentation folders give an empty file list', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'errand-examples-lib-'));
    try {
      assert.deepEqual(await search.listMarkdownFiles({ root: dir, files: [join(dir, 'README.md')], dirs: [join(dir, 'docs')] }), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the composed answer quotes passages with sources; its pieces join into the text', () => {
    const index = new search.Bm25Index();
    const doc =
      '# API\n\n## Cancel a request\n\nSend DELETE to the status resource. A pending request is cancelled at once.\n\n## Progress\n\nProgress is a percentage.';
    for (const passage of search.passagesOf('docs/api.md', doc)) index.add(passage, search.passageIndexText(passage));
    const question = 'How do I cancel a request?';
    const answer = search.composeAnswer(question, index.search(question), { idf: (t) => index.idf(t), filesSearched: 1 });
    assert.equal(answer.sources[0]?.file, 'docs/api.md');
    assert.equal(answer.sources[0]?.heading, 'API › Cancel a request');
    const joined = answer.pieces.join('');
    assert.match(joined, /Send DELETE to the status resource\./);
    assert.ok(!/\s$/.test(joined), 'no trailing whitespace');

    const none = search.composeAnswer('banana bread', [], { idf: () => 0, filesSearched: 3 });
    assert.deepEqual(none.sources, []);
    assert.match(none.pieces.join(''), /^I could not find anything about “banana bread”/);
    assert.match(search.composeAnswer('x', [], { idf: () => 0, filesSearched: 0 }).pieces.join(''), /no documentation was found/);
  });
});

describe('document analysis', () => {
  test('sentiment counts lexicon words, with negation and remedies', () => {
    assert.deepEqual(analysis.tallySentiment('Growth was strong and sales improved.'), { positive: 3, negative: 0 });
    assert.deepEqual(analysis.tallySentiment('The results were not good.'), { positive: 0, negative: 1 });
    assert.deepEqual(analysis.tallySentiment('We fixed a crash.'), { positive: 1, negative: 0 });
    assert.equal(analysis.sentimentOf({ positive: 6, negative: 1 }).label, 'POSITIVE');
    assert.equal(analysis.sentimentOf({ positive: 1, negative: 6 }).label, 'NEGATIVE');
    assert.equal(analysis.sentimentOf({ positive: 1, negative: 0 }).label, 'NEUTRAL', 'one word does not decide');
  });

  test('keywords are the recurring, non-generic words, shown in their commonest form', () => {
    const tally = new analysis.TermTally();
    tally.addParagraph('Revenue grew. Revenue growth came from new markets.');
    tally.addParagraph('The markets for espresso machines grew, and revenue followed.');
    const keywords = analysis.topKeywords(tally, 3);
    assert.deepEqual(keywords[0], { term: 'revenue', count: 3, score: 6.3 }); // 3 × (1 + ln(1 + 2 paragraphs))
    assert.deepEqual(new Set(keywords.slice(1).map((k) => k.term)), new Set(['markets', 'grew']));
  });

  test('named phrases skip the capitalised first word of a sentence', () => {
    const names = new Map<string, number>();
    analysis.tallyNames('Sales rose at Northwind Analytics in Lisbon.', names);
    analysis.tallyNames('Later, Lisbon grew again.', names);
    assert.deepEqual([...names].sort(), [
      ['Lisbon', 2],
      ['Northwind Analytics', 1],
    ]);
  });

  test('the summary keeps document order and leaves out headings', () => {
    const sentences = [
      { text: 'Espresso market report', paragraph: 0, position: 0 },
      { text: 'The espresso market grew strongly this year.', paragraph: 1, position: 0 },
      { text: 'Weather was mild in the spring and summer.', paragraph: 1, position: 1 },
      { text: 'Espresso machine sales drove the market growth.', paragraph: 2, position: 0 },
    ];
    const weights = new Map([
      ['espresso', 5],
      ['market', 4],
      ['grew', 2],
      ['growth', 2],
      ['machin', 1],
      ['sale', 1],
    ]);
    assert.deepEqual(
      analysis.summarise(sentences, weights, 2).map((s) => s.text),
      ['The espresso market grew strongly this year.', 'Espresso machine sales drove the market growth.'],
    );
  });

  test('HTML and Markdown become plain paragraphs', () => {
    assert.equal(
      analysis.htmlToText('<html><style>p{}</style><h1>Title</h1><p>Fish &amp; chips&#33;</p><script>x()</script></html>'),
      'Title\n\nFish & chips!',
    );
    assert.equal(analysis.markdownToText('# Title\n\nSome *text*.\n\n```js\ncode()\n```\n'), 'Title\n\nSome text.');
  });

  test('bundled samples load by name; unknown names fail as document_not_found', async () => {
    const sample = await analysis.loadSample('market-trends');
    assert.equal(sample.source.name, 'market-trends');
    assert.ok(sample.text.length > 2000);
    await assert.rejects(analysis.loadSample('../errand.yaml'), (err: { type?: string; retryable?: boolean }) => {
      assert.equal(err.type, 'document_not_found');
      assert.equal(err.retryable, false);
      return true;
    });
  });
});

describe('triage rules', () => {
  const issue = (title: string, body = ''): Issue => ({ number: 1, title, body, author: 'octocat', url: null, labels: [] });

  test('payloads without an issue are skipped with a reason; malformed issues fail without retry', () => {
    assert.match(triage.findIssueEvent({}).skip ?? '', /empty/);
    assert.match(triage.findIssueEvent({ zen: 'Keep it simple.', hook_id: 1 }).skip ?? '', /ping/);
    assert.match(triage.findIssueEvent({ action: 'closed', issue: { title: 'x' } }).skip ?? '', /closed/);
    assert.match(triage.findIssueEvent({ action: 'opened', issue: {} }).skip ?? '', /issue object is empty/);
    assert.equal(triage.findIssueEvent({ data: { issue: { title: 'Wrapped' } } }).issue?.title, 'Wrapped');
    assert.throws(
      () => triage.findIssueEvent({ action: 'opened', issue: 'not an object' }),
      (err: { type?: string; retryable?: boolean }) => err.type === 'invalid_payload' && err.retryable === false,
    );
  });

  test('labels and priorities', () => {
    const crash = issue('App crashes on save', 'Traceback (most recent call last):\n  File "x.py", line 3');
    const crashLabels = triage.classifyIssue(crash).labels;
    assert.equal(crashLabels[0], 'bug');
    assert.equal(triage.estimatePriority(crash, crashLabels, triage.reportHints(crash)).level, 'p1');

    const feature = issue('Feature request: add support for PostgreSQL', 'It would be great to run several nodes.');
    assert.deepEqual(triage.classifyIssue(feature).labels, ['feature']);

    const question = issue('How do I set a webhook secret?');
    assert.equal(triage.classifyIssue(question).labels[0], 'question');

    const security = issue('SSRF vulnerability in webhook delivery');
    const securityLabels = triage.classifyIssue(security).labels;
    assert.equal(securityLabels[0], 'security');
    assert.equal(triage.estimatePriority(security, securityLabels, triage.reportHints(security)).level, 'p0');

    assert.deepEqual(triage.classifyIssue(issue('Hello there')).labels, ['needs-triage']);
  });

  test('title similarity for duplicate hints', () => {
    const a = triage.titleTerms('Server crashes when the webhook URL has no path');
    const b = triage.titleTerms('Server crashed when webhook URL has no path');
    assert.ok(triage.similarity(a, b) >= 0.8);
    assert.equal(triage.similarity(a, triage.titleTerms('Add a dark theme')), 0);
  });
});

describe('operations run with a hand-made context', () => {
  interface Recorder {
    ctx: OperationContext;
    progress: Progress[];
    output: unknown[];
    controller: AbortController;
  }
  const record = (onProgress?: (p: Progress, r: Recorder) => void): Recorder => {
    const controller = new AbortController();
    const r: Recorder = {
      controller,
      progress: [],
      output: [],
      ctx: {
        request_id: 'req_test',
        operation: 'test',
        tenant: 'default',
        attempt: 1,
        max_attempts: 1,
        signal: controller.signal,
        deadline: Date.now() + 60_000,
        log: pino({ level: 'silent' }),
        async progress(p) {
          r.progress.push(p);
          onProgress?.(p, r);
        },
        async emit(chunk) {
          r.output.push(chunk);
        },
        fetch: () => Promise.reject(new Error('these tests fetch nothing')),
      },
    };
    return r;
  };
  const assistant = async () => (await load<{ default: OperationDefinition }>('assistant.ts')).default;
  const analyze = async () => (await load<{ default: OperationDefinition }>('analyze-document.ts')).default;

  test('assistant: steps, streamed pieces that join into the text, and input validation', async () => {
    const op = await assistant();
    const r = record();
    const result = (await op.run({ message: 'How do I cancel a request?' }, r.ctx)) as { text: string; agent: string; sources: unknown[] };
    assert.equal(result.agent, 'errand-docs');
    assert.deepEqual(
      r.progress.filter((p) => p.current_step).map((p) => p.current_step),
      ['Loading documents', 'Indexing', 'Ranking passages', 'Composing answer'],
    );
    assert.deepEqual(r.progress.at(-1), { percent: 100, completed_steps: 4, message: 'Answer ready' });
    assert.equal(r.output.map((c) => (c as { text: string }).text).join(''), result.text);
    await assert.rejects(Promise.resolve(op.run({ message: 42 }, record().ctx)), (err: { type?: string; retryable?: boolean }) => {
      return err.type === 'invalid_input' && err.retryable === false;
    });
  });

  test('assistant: a cancelled request stops with the signal reason', async () => {
    const op = await assistant();
    const r = record();
    const reason = Object.assign(new Error('Request cancelled by user'), { type: 'cancelled' });
    r.controller.abort(reason);
    await assert.rejects(Promise.resolve(op.run({ message: 'How do I cancel a request?' }, r.ctx)), (err) => err === reason);
    assert.deepEqual(r.output, []);
  });

  test('analyze-document: stops between chunks when cancelled mid-way', async () => {
    const op = await analyze();
    const reason = new Error('cancelled mid-way');
    const r = record((p, rec) => {
      if (p.message?.startsWith('Processed 12 of')) rec.controller.abort(reason);
    });
    const paragraphs = Array.from({ length: 40 }, (_, i) => `Paragraph ${i + 1} talks about espresso machines and market growth.`);
    await assert.rejects(Promise.resolve(op.run({ text: paragraphs.join('\n\n') }, r.ctx)), (err) => err === reason);
    assert.equal(r.progress.at(-1)?.message, 'Processed 12 of 40 paragraphs', 'no progress after the cancel');
  });

  test('analyze-document: step names and the final report', async () => {
    const op = await analyze();
    const r = record();
    await op.run({ document: 'design-note' }, r.ctx);
    assert.deepEqual(
      r.progress.filter((p) => p.current_step).map((p) => p.current_step),
      ['Extracting content', 'Computing statistics', 'Extracting keywords', 'Summarising'],
    );
    assert.ok(r.progress.every((p) => p.total_steps === undefined || p.total_steps === 4));
    assert.equal(r.progress.at(-1)?.percent, 100);
  });
});
