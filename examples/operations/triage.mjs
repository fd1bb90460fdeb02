/**
 * triage — the example trigger operation (`POST /v1/triggers/github-issue`).
 *
 * Plain JavaScript with no import from 'errand': an operation is any default
 * export with a `run(input, ctx)` function. It triages a GitHub `issues`
 * webhook payload ({ action, issue: { number, title, body, labels, user },
 * repository }) with keyword rules: labels (bug / feature / question /
 * documentation / security), a priority p0–p3 with its reason, report-quality
 * hints, possible duplicates among issues seen recently by this process, a
 * one-paragraph summary and a suggested reply.
 *
 * Anything that is not an issue event (the seeds post `{"data": {...}}`, which
 * arrives as `{}`; GitHub's `ping`; a `closed` action) completes with
 * `triaged: false` and the reason — it is not a failure.
 *
 * Failing from a .mjs without importing RequestFailure: throw an Error with
 * `retryable` and `type` set, e.g.
 *   throw Object.assign(new Error('GitHub API rate limit'), { retryable: true, type: 'github_rate_limited', retryAfterMs: 60_000 });
 */

/** Label rules: each pattern that matches adds its weight (title matches count double). */
export const LABEL_RULES = {
  security: [
    [/\b(security|vulnerab\w*|cve-\d{4}-\d+|xss|csrf|ssrf|rce|exploit\w*|privilege escalation|auth(entication)? bypass)\b/i, 3],
    [/\b(injection|leak(s|ed|ing)?|exposed?|secret|credentials?|api key)\b/i, 1],
  ],
  bug: [
    [/\b(crash(es|ed|ing)?|segfault|panic|exception|stack ?trace|traceback|regression)\b/i, 3],
    [
      /\b(bug|error|fail(s|ed|ing|ure)?|broken|does ?n[o']?t work|not working|unexpected(ly)?|incorrect|wrong|hang(s|ing)?|freez(e|es|ing))\b/i,
      2,
    ],
    [/\b(500|timeout|timed out|null|undefined)\b/i, 1],
  ],
  feature: [
    [/\b(feature request|enhancement|proposal|add support|support for|ability to|option to)\b/i, 3],
    [/\b(would be (nice|great|useful)|it would help|could you add|please add|allow(s|ing)?|suggest(ion)?|request)\b/i, 2],
  ],
  question: [
    [/\b(how (do|can|to|should)|is (it|there) (possible|a way)|what is the|why does|question)\b/i, 3],
    [/\b(help|clarif\w*|confused|understand)\b/i, 1],
  ],
  documentation: [
    [/\b(docs?|documentation|readme|typo|tutorial|guide|broken link|misspell\w*)\b/i, 3],
    [/\b(example|explain\w*|unclear|outdated)\b/i, 1],
  ],
};

/** Labels already on the issue that confirm a category (a substring match: "type: bug" counts). */
const EXISTING_LABEL_HINTS = {
  security: ['security'],
  bug: ['bug', 'defect'],
  feature: ['feature', 'enhancement'],
  question: ['question'],
  documentation: ['doc'],
};

const TOTAL_STEPS = 4;
const TRIAGED_ACTIONS = new Set(['opened', 'reopened', 'edited']);
/** Issues remembered per repository for duplicate hints (this process only, newest kept), and repositories remembered. */
const RECENT_LIMIT = 200;
const RECENT_REPOSITORIES = 100;
const recent = new Map();

export default {
  description: 'Triages GitHub issue webhooks: labels, priority, summary and a suggested reply',

  async run(input, ctx) {
    await step(ctx, 1, 'Reading payload', 5);
    const event = findIssueEvent(input);
    if (event.skip) {
      await ctx.progress({ percent: 100, completed_steps: TOTAL_STEPS, message: 'Nothing to triage' });
      return { triaged: false, reason: event.skip, received_keys: isObject(input) ? Object.keys(input).slice(0, 20) : [] };
    }
    const { issue, repository, action } = event;

    await step(ctx, 2, 'Classifying', 30);
    const classification = classifyIssue(issue);

    await step(ctx, 3, 'Estimating priority', 55);
    const hints = reportHints(issue);
    const priority = estimatePriority(issue, classification.labels, hints);
    const duplicates = rememberAndFindDuplicates(repository, issue);

    await step(ctx, 4, 'Drafting reply', 80);
    const triage = { labels: classification.labels, signals: classification.signals, priority, hints, possible_duplicates: duplicates };
    const result = {
      triaged: true,
      action,
      repository,
      issue: { number: issue.number, title: issue.title, author: issue.author, url: issue.url },
      labels: triage.labels,
      scores: classification.scores,
      signals: triage.signals,
      priority: priority.level,
      priority_reason: priority.reason,
      hints,
      possible_duplicates: duplicates,
      summary: summariseIssue(issue, repository, triage),
      suggested_reply: suggestReply(issue, triage),
    };
    await ctx.progress({
      percent: 100,
      completed_steps: TOTAL_STEPS,
      message: `Labelled ${result.labels.join(', ')} (${result.priority})`,
    });
    return result;
  },
};

/**
 * Finds the issue in a payload: `{ action, issue, repository }` as GitHub
 * sends it, or the same wrapped once more in `data` (when posted to
 * /v1/operations/triage with the trigger's envelope). Returns `{ skip }` with
 * a reason when there is nothing to triage.
 */
export function findIssueEvent(input) {
  let payload = input;
  if (isObject(payload) && !('issue' in payload) && isObject(payload.data)) payload = payload.data;
  if (!isObject(payload) || Object.keys(payload).length === 0) {
    return { skip: 'Nothing to triage: the payload is empty (expected a GitHub "issues" event with an issue object).' };
  }
  if ('zen' in payload && 'hook_id' in payload)
    return { skip: "Nothing to triage: this is GitHub's ping event; the webhook is connected." };
  if (!('issue' in payload)) {
    return { skip: 'Nothing to triage: the payload has no issue object (expected a GitHub "issues" event).' };
  }
  const raw = payload.issue;
  if (isObject(raw) && Object.keys(raw).length === 0) {
    // The seeds post {"action": "opened", "issue": {...}}: an empty placeholder, not a malformed issue.
    return { skip: 'Nothing to triage: the issue object is empty (no title or body).' };
  }
  if (!isObject(raw) || typeof raw.title !== 'string') {
    // A malformed payload will not improve on retry: fail without retrying.
    throw Object.assign(new Error("The payload's issue must be an object with a title string"), {
      retryable: false,
      type: 'invalid_payload',
    });
  }
  const action = typeof payload.action === 'string' ? payload.action : 'opened';
  if (!TRIAGED_ACTIONS.has(action))
    return { skip: `Nothing to triage: issue action "${action}" needs no triage (only opened, reopened and edited do).` };
  if ('pull_request' in raw) return { skip: 'Nothing to triage: this issue is a pull request.' };
  const repository = isObject(payload.repository) && typeof payload.repository.full_name === 'string' ? payload.repository.full_name : null;
  const issue = {
    number: Number.isInteger(raw.number) ? raw.number : null,
    title: raw.title.trim(),
    body: typeof raw.body === 'string' ? raw.body.slice(0, 65_536) : '',
    author: isObject(raw.user) && typeof raw.user.login === 'string' ? raw.user.login : null,
    url: typeof raw.html_url === 'string' ? raw.html_url : null,
    labels: Array.isArray(raw.labels)
      ? raw.labels.map((l) => (typeof l === 'string' ? l : isObject(l) ? l.name : null)).filter((l) => typeof l === 'string')
      : [],
  };
  return { issue, repository, action };
}

/** Scores every label; keeps those within half of the best (at least 2 points). Existing matching labels count 3. */
export function classifyIssue(issue) {
  const scores = {};
  const signals = [];
  const existing = issue.labels.map((l) => l.toLowerCase());
  for (const [label, rules] of Object.entries(LABEL_RULES)) {
    let score = existing.some((l) => EXISTING_LABEL_HINTS[label].some((hint) => l.includes(hint))) ? 3 : 0;
    for (const [pattern, weight] of rules) {
      const inTitle = pattern.exec(issue.title);
      const inBody = pattern.exec(issue.body);
      if (inTitle) score += weight * 2;
      if (inBody) score += weight;
      const hit = inTitle ?? inBody;
      if (hit) signals.push({ label, matched: hit[0].toLowerCase() });
    }
    scores[label] = score;
  }
  if (issue.title.trim().endsWith('?')) scores.question += 2;
  const best = Math.max(...Object.values(scores));
  const labels =
    best < 2
      ? ['needs-triage']
      : Object.keys(scores)
          .filter((l) => scores[l] >= Math.max(2, best / 2))
          .sort((a, b) => scores[b] - scores[a]);
  return { labels, scores, signals: signals.filter((s) => labels.includes(s.label)) };
}

/** What a maintainer would look for in a report. */
export function reportHints(issue) {
  const text = `${issue.title}\n${issue.body}`;
  return {
    has_reproduction_steps: /steps to reproduce|to reproduce|repro(duction)?\b|^\s*1[.)]\s/im.test(issue.body),
    has_stack_trace: /(^\s+at .+[(:]\d+(:\d+)?\)?$)|traceback \(most recent call last\)|exception in thread|panicked at/im.test(issue.body),
    has_code_block: /```|^( {4}|\t)\S/m.test(issue.body),
    mentions_version: /\bv?\d+\.\d+(\.\d+)?\b|\bversion\b/i.test(text),
    mentions_expected_behaviour: /\bexpect(ed|s|ing)?\b|should (be|have|return)/i.test(issue.body),
    body_length: issue.body.length,
  };
}

/** p0 security or data loss, p1 crash/regression/blocker, p2 other bugs, p3 the rest. */
export function estimatePriority(issue, labels, hints) {
  const text = `${issue.title}\n${issue.body}`;
  if (labels.includes('security')) return { level: 'p0', reason: 'possible security problem' };
  if (labels.includes('bug')) {
    if (/data loss|lost data|corrupt\w*|production (is )?down|outage|all users/i.test(text))
      return { level: 'p0', reason: 'bug with data loss or an outage' };
    if (/crash\w*|regression|segfault|panic|blocker|blocking|urgent|cannot start|won'?t start/i.test(text) || hints.has_stack_trace) {
      return { level: 'p1', reason: 'crash, regression or blocking bug' };
    }
    return { level: 'p2', reason: 'bug without signs of a crash or data loss' };
  }
  return {
    level: 'p3',
    reason: labels.includes('needs-triage') ? 'unclassified: a maintainer should look' : `${labels[0]} (not a defect)`,
  };
}

/** Words of a title for similarity: lower-case, 3+ letters, minus very common words. */
export function titleTerms(title) {
  const common = new Set([
    'the',
    'and',
    'for',
    'with',
    'when',
    'not',
    'does',
    'doesnt',
    'from',
    'this',
    'that',
    'are',
    'was',
    'can',
    'cannot',
    'how',
    'what',
    'why',
    'after',
    'into',
    'using',
  ]);
  return new Set(
    (title.toLowerCase().match(/[a-z0-9]{3,}/g) ?? []).filter((w) => !common.has(w)).map((w) => w.replace(/(ing|ed|es|s)$/, '')),
  );
}

/** Jaccard similarity of two term sets, 0–1. */
export function similarity(a, b) {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const t of a) if (b.has(t)) shared += 1;
  return shared / (a.size + b.size - shared);
}

function rememberAndFindDuplicates(repository, issue) {
  const key = repository ?? '(unknown repository)';
  const list = recent.get(key) ?? [];
  const terms = titleTerms(issue.title);
  const found = list
    .filter((seen) => seen.number !== issue.number)
    .map((seen) => ({ number: seen.number, title: seen.title, similarity: Math.round(similarity(terms, seen.terms) * 100) / 100 }))
    .filter((d) => d.similarity >= 0.5)
    .sort((a, b) => b.similarity - a.similarity)
    .slice(0, 3);
  const kept = list.filter((seen) => seen.number !== issue.number);
  kept.push({ number: issue.number, title: issue.title, terms });
  recent.delete(key); // re-inserted last: the Map's order is least recently seen first
  recent.set(key, kept.slice(-RECENT_LIMIT));
  if (recent.size > RECENT_REPOSITORIES) recent.delete(recent.keys().next().value);
  return found;
}

/** One paragraph a maintainer can read instead of the issue. */
export function summariseIssue(issue, repository, triage) {
  const ref = issue.number === null ? 'An issue' : `Issue #${issue.number}`;
  const by = issue.author ? ` by @${issue.author}` : '';
  const where = repository ? ` in ${repository}` : '';
  const kinds = triage.labels.includes('needs-triage')
    ? 'does not match any rule and needs a human look'
    : `reads as ${article(triage.labels[0])} ${describeLabel(triage.labels[0])}${triage.labels.length > 1 ? ` (also ${triage.labels.slice(1).join(', ')})` : ''}`;
  const because =
    triage.signals.length > 0 ? `, going by ${[...new Set(triage.signals.map((s) => `“${s.matched}”`))].slice(0, 4).join(', ')}` : '';
  const has = [];
  const lacks = [];
  (triage.hints.has_reproduction_steps ? has : lacks).push('steps to reproduce');
  if (triage.hints.has_stack_trace) has.push('a stack trace');
  (triage.hints.mentions_version ? has : lacks).push('a version');
  const firstLine = issue.body
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#') && !l.startsWith('```'));
  const opening = firstLine
    ? ` It opens: “${firstLine.length > 160 ? `${firstLine.slice(0, 157)}…` : firstLine}”`
    : ' It has no description.';
  const quality = triage.labels.includes('bug')
    ? ` The report ${has.length > 0 ? `includes ${has.join(' and ')}` : 'includes no details'}${lacks.length > 0 ? ` but lacks ${lacks.join(' and ')}` : ''}.`
    : '';
  const dupes =
    triage.possible_duplicates.length > 0 ? ` It may duplicate ${triage.possible_duplicates.map((d) => `#${d.number}`).join(', ')}.` : '';
  return `${ref} “${issue.title}”${by}${where} ${kinds}${because}, priority ${triage.priority.level} (${triage.priority.reason}).${opening}${quality}${dupes}`;
}

/** A first reply to post on the issue. */
export function suggestReply(issue, triage) {
  const hello = issue.author ? `Thanks for the report, @${issue.author}!` : 'Thanks for the report!';
  const primary = triage.labels[0];
  if (primary === 'security') {
    return `${hello} Since this may be a security problem, please do not post further details publicly — send them to the maintainers privately (see SECURITY.md) and we will follow up there.`;
  }
  if (primary === 'bug') {
    const asks = [];
    if (!triage.hints.mentions_version) asks.push('the version you are running');
    if (!triage.hints.has_reproduction_steps) asks.push('the steps to reproduce it');
    if (!triage.hints.mentions_expected_behaviour) asks.push('what you expected to happen');
    if (!triage.hints.has_stack_trace && /crash|exception|error/i.test(`${issue.title} ${issue.body}`))
      asks.push('the full error output or stack trace');
    const more =
      asks.length > 0 ? ` To help us reproduce it, could you add ${listOf(asks)}?` : ' It has everything we need to start investigating.';
    return `${hello} This looks like a bug (${triage.priority.level}).${more}`;
  }
  if (primary === 'feature')
    return `${hello} We have labelled this as a feature request. Could you describe the use case behind it, so we can judge how it fits with the existing options?`;
  if (primary === 'question')
    return `${hello} We have labelled this as a question. The guides in docs/ may already cover it; if they do not, that is a documentation gap we would like to fix.`;
  if (primary === 'documentation')
    return `${hello} We have labelled this as a documentation issue. A pull request with the fix is very welcome.`;
  return `${hello} A maintainer will take a look and label it.`;
}

function describeLabel(label) {
  return (
    {
      bug: 'bug report',
      feature: 'feature request',
      question: 'question',
      documentation: 'documentation issue',
      security: 'security report',
    }[label] ?? label
  );
}

function article(label) {
  return label === 'documentation' ? 'a' : /^[aeiou]/.test(describeLabel(label)) ? 'an' : 'a';
}

function listOf(items) {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function step(ctx, n, name, percent) {
  if (ctx.signal.aborted) throw ctx.signal.reason;
  await ctx.progress({ percent, message: `${name}…`, current_step: name, total_steps: TOTAL_STEPS, completed_steps: n - 1 });
}
