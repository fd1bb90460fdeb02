/**
 * assistant — the example chat operation (`POST /v1/chat`).
 *
 * Answers questions about Errand offline, from the project's own
 * documentation: README.md, docs/**\/*.md and examples/README.md are cut into
 * passages, ranked against the message with BM25, and the best few passages
 * are quoted back with their sources. No model, no network: a small,
 * honest stand-in for an LLM agent that still does real work, reports real
 * progress, streams its answer and can be cancelled.
 *
 * Input:  { message: string, ... }   (other chat fields are ignored)
 * Result: { text, agent: 'errand-docs', sources: [{ file, heading, score }] }
 */
import { fileURLToPath } from 'node:url';
import { defineOperation, RequestFailure, type OperationContext } from 'errand';
import { composeAnswer } from './lib/answer.js';
import { buildCorpus, corpusKey, listMarkdownFiles, rankPassages, type Corpus } from './lib/corpus.js';

interface ChatInput {
  message?: unknown;
}

export interface ChatResult {
  text: string;
  agent: 'errand-docs';
  sources: { file: string; heading: string; score: number }[];
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOURCES = {
  root: REPO_ROOT,
  files: [fileURLToPath(new URL('../../README.md', import.meta.url)), fileURLToPath(new URL('../README.md', import.meta.url))],
  dirs: [fileURLToPath(new URL('../../docs/', import.meta.url))],
};
const TOTAL_STEPS = 4;
/** Longest part of a message used as the query (a pasted log should not make ranking slow). */
const MAX_QUERY_CHARS = 2000;

// The index survives between chats; it is rebuilt when a file is added,
// removed or changed (mtime or size), which a stat per file detects cheaply.
let cached: Corpus | undefined;

export default defineOperation<ChatInput, ChatResult>({
  description: 'Answers questions about Errand from its documentation (offline BM25 retrieval)',

  async run(input, ctx) {
    const message = typeof input?.message === 'string' ? input.message.trim() : '';
    if (message === '') {
      throw RequestFailure.nonRetryable('message must be a non-empty string', { type: 'invalid_input' });
    }

    await step(ctx, 1, 'Loading documents', 'Looking for README.md and docs/', 5);
    const files = await listMarkdownFiles(SOURCES);
    ctx.signal.throwIfAborted();

    let corpus = cached;
    if (corpus?.key === corpusKey(files)) {
      await step(ctx, 2, 'Indexing', `Index of ${files.length} files is up to date`, 40);
    } else {
      await step(ctx, 2, 'Indexing', `Indexing ${files.length} files`, 15);
      corpus = await buildCorpus(files, {
        signal: ctx.signal,
        onFile: (done, total) =>
          ctx.progress({ percent: 15 + Math.round((25 * done) / total), message: `Indexed ${done} of ${total} files` }),
      });
      cached = corpus;
    }

    await step(ctx, 3, 'Ranking passages', `Ranking ${corpus.passages.length} passages`, 45);
    const query = message.slice(0, MAX_QUERY_CHARS);
    const index = corpus.index;
    const hits = rankPassages(corpus, query, 8);
    const answer = composeAnswer(query, hits, {
      idf: (t) => index.idf(t),
      queryTerms: index.queryTerms(query),
      filesSearched: files.length,
    });
    ctx.log.debug({ files: files.length, passages: corpus.passages.length, hits: hits.length }, 'ranked documentation');

    await step(ctx, 4, 'Composing answer', `Quoting ${answer.sources.length} passage(s)`, 60);
    // Stream the answer piece by piece (a header, a sentence, a list item):
    // joining every emitted chunk gives exactly result.text.
    for (const [i, piece] of answer.pieces.entries()) {
      ctx.signal.throwIfAborted();
      await ctx.emit({ text: piece });
      if (i % 4 === 3) await ctx.progress({ percent: 60 + Math.round((39 * (i + 1)) / answer.pieces.length) });
    }
    await ctx.progress({ percent: 100, completed_steps: TOTAL_STEPS, message: 'Answer ready' });
    return { text: answer.pieces.join(''), agent: 'errand-docs', sources: answer.sources };
  },
});

/** Starts step `n` of {@link TOTAL_STEPS}, first giving a cancel or timeout the chance to stop the work. */
async function step(ctx: OperationContext, n: number, name: string, message: string, percent: number): Promise<void> {
  ctx.signal.throwIfAborted();
  await ctx.progress({ percent, message, current_step: name, total_steps: TOTAL_STEPS, completed_steps: n - 1 });
}
