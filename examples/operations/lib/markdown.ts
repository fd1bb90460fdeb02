/**
 * Just enough Markdown structure for retrieval: a document becomes sections
 * (one per ATX heading, `#` … `######`), each a list of blocks — prose
 * paragraphs, lists, tables and fenced code. Front matter, HTML comments and
 * reference-link definitions are dropped. Not a Markdown renderer: inline
 * markup is only stripped (see {@link plainInline}).
 */

export type BlockKind = 'prose' | 'list' | 'table' | 'code';

export interface Block {
  kind: BlockKind;
  /** Prose, list and table blocks: the Markdown source lines joined by "\n". Code: the fence included. */
  text: string;
}

export interface Section {
  /** Headings from the document title down to this section, e.g. ["Errand", "Cancel a request"]. */
  trail: string[];
  level: number;
  blocks: Block[];
}

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const FENCE = /^\s*(```+|~~~+)/;
const LIST_ITEM = /^\s*(?:[-*+]|\d+[.)])\s+/;

/** Splits a Markdown document into sections of blocks. Text before the first heading forms a section with an empty trail. */
export function parseMarkdown(source: string): Section[] {
  const lines = source
    .replace(/\r\n?/g, '\n')
    .replace(/^---\n[\s\S]*?\n---\n/, '') // front matter
    .replace(/<!--[\s\S]*?-->/g, '')
    .split('\n');
  const sections: Section[] = [];
  let trail: string[] = [];
  let current: Section = { trail: [], level: 0, blocks: [] };
  let buffer: string[] = [];
  let bufferKind: BlockKind = 'prose';

  const flush = () => {
    const text = buffer.join('\n').trim();
    if (text !== '') current.blocks.push({ kind: bufferKind, text });
    buffer = [];
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const fence = FENCE.exec(line);
    if (fence) {
      flush();
      const marker = fence[1] ?? '```';
      const code = [line];
      for (i += 1; i < lines.length; i++) {
        const inner = lines[i] ?? '';
        code.push(inner);
        if (inner.trim().startsWith(marker.slice(0, 3)) && inner.trim().replace(/[`~]/g, '') === '') break;
      }
      current.blocks.push({ kind: 'code', text: code.join('\n') });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      if (current.blocks.length > 0 || current.level > 0) sections.push(current);
      const level = heading[1]?.length ?? 1;
      const title = plainInline(heading[2] ?? '');
      trail = [...trail.slice(0, level - 1), title];
      current = { trail: trail.filter((t) => t !== ''), level, blocks: [] };
      continue;
    }
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (/^\s*\[[^\]]+\]:\s*\S+/.test(line)) continue; // [ref]: https://…
    const kind: BlockKind = line.trim().startsWith('|') ? 'table' : LIST_ITEM.test(line) ? 'list' : 'prose';
    // A list or table starting right after prose (no blank line) starts a new block.
    if (buffer.length > 0 && kind !== bufferKind && !(bufferKind === 'list' && kind === 'prose')) flush();
    if (buffer.length === 0) bufferKind = kind;
    buffer.push(line);
  }
  flush();
  if (current.blocks.length > 0 || current.level > 0) sections.push(current);
  return sections;
}

// Only real HTML tags are stripped: placeholders such as `Bearer <key>` stay.
const HTML_TAG = /<\/?(?:a|b|i|u|em|strong|code|kbd|span|div|p|br|hr|img|sup|sub|small|details|summary|picture|source)\b[^>]*>/gi;

/** Strips inline Markdown: emphasis, inline code ticks, links and images (their text is kept), HTML tags. */
export function plainInline(text: string): string {
  return text
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\[[^\]]*\]/g, '$1')
    .replace(HTML_TAG, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(^|[^\w*])[*_]([^*_\n]+)[*_](?=[^\w*]|$)/g, '$1$2')
    .replace(/`([^`]+)`/g, '$1')
    .trim();
}

/** A block as readable plain text: prose flattened to one line, list items one per line, tables row by row. */
export function blockToPlain(block: Block): string {
  switch (block.kind) {
    case 'code':
      return block.text;
    case 'prose':
      return plainInline(block.text.replace(/\s*\n\s*/g, ' '));
    case 'list':
      return block.text
        .split('\n')
        .map((l) => (LIST_ITEM.test(l) ? `- ${plainInline(l.replace(LIST_ITEM, ''))}` : `  ${plainInline(l)}`))
        .join('\n');
    case 'table':
      return block.text
        .split('\n')
        .filter((l) => !/^\s*\|?\s*:?-{2,}/.test(l))
        .map((l) =>
          l
            .split('|')
            .map((c) => plainInline(c))
            .filter((c) => c !== '')
            .join(' — '),
        )
        .join('\n');
  }
}

/** The text a block contributes to the search index (code keeps its words: commands and field names are useful terms). */
export function blockIndexText(block: Block): string {
  if (block.kind !== 'code') return blockToPlain(block);
  // Fences go, and so does prose quoted inside code (a sample chat message
  // in a curl line), which would otherwise match questions it does not answer.
  return block.text.replace(/^\s*(```+|~~~+)\w*/gm, '').replace(/"[^"\n]*\s[^"\n]*\s[^"\n]*"/g, '""');
}
