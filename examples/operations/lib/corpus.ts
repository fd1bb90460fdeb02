/**
 * The documentation corpus the assistant answers from: Markdown files cut
 * into passages (a section's blocks, grouped up to ~900 characters so a
 * passage is about one idea) and indexed with BM25.
 *
 * Files are found by {@link listMarkdownFiles}; a corpus is rebuilt only when
 * the set of files or one of their mtimes/sizes changes ({@link corpusKey}),
 * so repeated chats reuse the index.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Bm25Index, type Bm25Hit } from './bm25.js';
import { blockIndexText, parseMarkdown, type Block } from './markdown.js';
import { terms } from './text.js';

/** A Markdown file to index. */
export interface SourceFile {
  /** Absolute path. */
  path: string;
  /** Shown in answers: the path relative to the repository root, with forward slashes. */
  name: string;
  mtimeMs: number;
  size: number;
}

/** A retrievable piece of a document. */
export interface Passage {
  file: string;
  /** The heading trail, e.g. "Errand › Requests › Cancel a request". */
  heading: string;
  blocks: Block[];
}

export interface Corpus {
  key: string;
  files: string[];
  passages: Passage[];
  index: Bm25Index<Passage>;
}

/** Longest passage before a section is cut, in characters. */
export const PASSAGE_CHARS = 900;
/** Files larger than this are skipped (a generated dump is not documentation). */
export const MAX_FILE_BYTES = 1_000_000;
/** Most files indexed, so a huge docs tree cannot stall a chat. */
export const MAX_FILES = 500;

/**
 * Finds the files to index: each of `files` that exists, then every `*.md`
 * under each of `dirs` (recursively, skipping dot-folders and node_modules).
 * Missing files and folders are simply absent from the result.
 */
export async function listMarkdownFiles(options: { root: string; files: string[]; dirs: string[] }): Promise<SourceFile[]> {
  const found: SourceFile[] = [];
  const add = async (path: string) => {
    if (found.length >= MAX_FILES) return;
    try {
      const info = await stat(path);
      if (info.isFile() && info.size <= MAX_FILE_BYTES) {
        found.push({ path, name: relative(options.root, path).split(sep).join('/'), mtimeMs: info.mtimeMs, size: info.size });
      }
    } catch {
      // Not there (yet): documentation may be written while the server runs.
    }
  };
  for (const file of options.files) await add(file);
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path, depth + 1);
      else if (entry.isFile() && entry.name.toLowerCase().endsWith('.md')) await add(path);
    }
  };
  for (const dir of options.dirs) await walk(dir, 0);
  return found;
}

/** Identifies a set of files and their versions: equal keys mean the cached corpus is still good. */
export function corpusKey(files: readonly SourceFile[]): string {
  return files.map((f) => `${f.path}\u0000${f.mtimeMs}\u0000${f.size}`).join('\n');
}

/** Cuts one Markdown document into passages. */
export function passagesOf(file: string, markdown: string): Passage[] {
  const passages: Passage[] = [];
  const title = file.replace(/\.md$/i, '');
  for (const section of parseMarkdown(markdown)) {
    const heading = section.trail.length > 0 ? section.trail.join(' › ') : title;
    let blocks: Block[] = [];
    let length = 0;
    for (const block of section.blocks) {
      // Keep a code block with the prose that introduces it, even past the limit.
      if (blocks.length > 0 && length + block.text.length > PASSAGE_CHARS && block.kind !== 'code') {
        passages.push({ file, heading, blocks });
        blocks = [];
        length = 0;
      }
      blocks.push(block);
      length += block.text.length;
    }
    if (blocks.length > 0) passages.push({ file, heading, blocks });
    else if (section.trail.length > 0) passages.push({ file, heading, blocks: [] }); // a heading alone still names a topic
  }
  return passages;
}

/** The text a passage is indexed under: its last heading twice (headings are strong evidence), the trail, then the blocks. */
export function passageIndexText(passage: Passage): string {
  const last = passage.heading.split(' › ').at(-1) ?? '';
  return [last, passage.heading, ...passage.blocks.map(blockIndexText)].join('\n');
}

/** Reads and indexes `files`; `onFile` is called after each file (for progress and cancellation). */
export async function buildCorpus(
  files: readonly SourceFile[],
  options: { signal?: AbortSignal; onFile?: (done: number, total: number) => Promise<void> } = {},
): Promise<Corpus> {
  const index = new Bm25Index<Passage>();
  const passages: Passage[] = [];
  let done = 0;
  for (const file of files) {
    options.signal?.throwIfAborted();
    let text: string;
    try {
      text = await readFile(file.path, { encoding: 'utf8', signal: options.signal });
    } catch {
      if (options.signal?.aborted) throw options.signal.reason;
      continue; // removed between listing and reading: skip it
    }
    for (const passage of passagesOf(file.name, text)) {
      passages.push(passage);
      index.add(passage, passageIndexText(passage));
    }
    done += 1;
    await options.onFile?.(done, files.length);
  }
  return { key: corpusKey(files), files: files.map((f) => f.name), passages, index };
}

/**
 * Ranks passages for a question: BM25, then a bonus of up to +50% for a
 * passage whose own heading the question names ("What is Errand?" → the
 * section titled "Errand"; "How do I cancel a request?" → "Cancel a
 * request"), in proportion to the share of the heading's terms the question
 * contains. Headings are what authors chose to call a topic, so a question
 * that repeats one is very likely about that section.
 */
export function rankPassages(corpus: Corpus, query: string, limit: number): Bm25Hit<Passage>[] {
  const wanted = new Set(corpus.index.queryTerms(query));
  const hits = corpus.index.search(query, limit * 3).map((hit) => {
    const heading = new Set(terms(hit.item.heading.split(' › ').at(-1) ?? ''));
    if (heading.size === 0) return hit;
    const named = [...heading].filter((t) => wanted.has(t)).length / heading.size;
    return { ...hit, score: hit.score * (1 + 0.5 * named) };
  });
  return hits.sort((a, b) => b.score - a.score).slice(0, limit);
}
