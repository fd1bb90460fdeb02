/**
 * The dashboard in a real browser (Debian's Chromium via playwright-core)
 * against the real built server on 127.0.0.1: sign in with a key, submit
 * work, watch progress live, cancel, retry, see and redeliver a webhook,
 * tenant isolation, plain errors, and XSS payloads shown as text.
 * Needs `npm run build -w errand` (the server and the dashboard bundle).
 * Waits use locators and URLs (the page's CSP forbids the eval that
 * waitForFunction polling needs); the few evaluate() calls are strings, since
 * this file is type-checked without the DOM library.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  http,
  killAllServers,
  makeTempDir,
  startServer,
  waitFor,
  writeConfig,
  writeStepsOperation,
  type ServerProcess,
} from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { browserSkipReason, launchBrowser, screenshot, SCREENSHOTS_DIR, type Browser } from './browser.js';

const ALPHA = 'key_alpha_dashboard_0001';
const BETA = 'key_beta_dashboard_0002';
const ADMIN = 'adm_dashboard_0003';
const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

/** Counts the page's form controls that have no label (run in the page). */
const UNLABELLED_CONTROLS = `[...document.querySelectorAll('input, select, textarea')].filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label')).length`;

const skip = browserSkipReason();

// The suite as a whole takes 1–2 minutes on a busy machine: more than the runner's per-test default.
describe('dashboard in Chromium', { skip, timeout: 420_000 }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let receiver: Receiver;
  let cleanup: () => void;

  before(async () => {
    const temp = makeTempDir('errand-dashboard-');
    cleanup = temp.cleanup;
    const dir = temp.dir;
    receiver = await startReceiver();
    writeStepsOperation(dir, 'steps.mjs');
    writeFileSync(join(dir, 'echo.mjs'), 'export default { async run(input) { return input; } };\n');
    writeFileSync(
      join(dir, 'fail.mjs'),
      `export default { async run(input) { throw Object.assign(new Error(String(input?.message ?? 'boom')), { retryable: false, type: 'tool_error' }); } };\n`,
    );
    // Fails its first run, succeeds after: a retry from the dashboard then completes.
    writeFileSync(
      join(dir, 'flaky.mjs'),
      `import { existsSync, writeFileSync } from 'node:fs';
const MARK = ${JSON.stringify(join(dir, 'flaky.ran'))};
export default { async run() {
  if (!existsSync(MARK)) { writeFileSync(MARK, ''); throw Object.assign(new Error('first run fails'), { retryable: false, type: 'tool_error' }); }
  return { second: true };
} };
`,
    );
    const config = writeConfig(dir, {
      store: { url: `sqlite:${join(dir, 'errand.db')}` },
      operations: {
        steps: { module: './steps.mjs' },
        echo: { module: './echo.mjs' },
        fail: { module: './fail.mjs', retry: { max_attempts: 1 } },
        flaky: { module: './flaky.mjs', retry: { max_attempts: 1 } },
      },
      auth: {
        keys: [
          { key: ALPHA, tenant: 'alpha' },
          { key: BETA, tenant: 'beta' },
        ],
        admin_keys: [ADMIN],
      },
      webhooks: { allow: ['127.0.0.1'], backoff: ['1s'] },
      logging: { level: 'silent' },
    });
    server = await startServer({ config, cwd: dir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await killAllServers();
    cleanup?.();
    console.log(`dashboard screenshots: ${SCREENSHOTS_DIR}`);
  });

  const submit = async (key: string, operation: string, input: unknown, query = ''): Promise<string> => {
    const res = await http('POST', `${server.url}/v1/operations/${operation}?async=true${query}`, input, {
      authorization: `Bearer ${key}`,
    });
    assert.equal(res.status, 202, res.text);
    return (res.body as { request_id: string }).request_id;
  };
  const statusOf = async (key: string, id: string) =>
    (await http('GET', `${server.url}/v1/requests/${id}`, undefined, { authorization: `Bearer ${key}` })).body as { status: string };

  /** Opens the dashboard and signs in with the keyboard only (the key field has focus; Enter submits). */
  const signIn = async (key: string, hash = ''): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard${hash}`);
    await page.locator('#api-key:focus').waitFor();
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await page.getByTestId('who').waitFor();
    return page;
  };
  const badge = (page: Page) => page.locator('main .summary .badge');

  test('serves the page with a strict CSP and cache headers; the data needs a key', async () => {
    const page = await http('GET', `${server.url}/dashboard`);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.doesNotMatch(page.text, /<script>/, 'no inline script');
    const asset = /src="(\/dashboard\/assets\/app-[^"]+\.js)"/.exec(page.text)?.[1];
    assert.ok(asset, page.text);
    const js = await http('GET', `${server.url}${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    assert.equal((await http('GET', `${server.url}/dashboard/assets/nope.js`)).status, 404);
    const stats = await http('GET', `${server.url}/v1/stats`);
    assert.equal(stats.status, 401);
    assert.equal((stats.body as { error: { type: string } }).error.type, 'unauthorized');
  });

  test('a wrong key is told in plain words and shows no data', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/dashboard`);
      await page.getByLabel('API key').fill('not-a-key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'This key was not accepted (401)' }).waitFor();
      assert.equal(await page.locator('table').count(), 0);
      await screenshot(page, 'wrong-key');
    } finally {
      await page.close();
    }
  });

  test('submits work from the dashboard; the list updates live and the progress bar moves to completion', async () => {
    const page = await signIn(ALPHA);
    try {
      await page.getByRole('heading', { name: 'Requests' }).waitFor();
      await page.getByTestId('live-state').filter({ hasText: 'Live' }).waitFor();
      assert.equal(await page.evaluate(UNLABELLED_CONTROLS), 0, 'every form control has a label');
      // Submitted from the dashboard: the row appears and finishes without a reload.
      await page.getByText('Submit a request').click();
      await page.getByRole('combobox', { name: 'Operation' }).last().selectOption('steps');
      await page.getByLabel('Input (JSON)').fill('{"steps": 4, "step_ms": 300}');
      await page.getByRole('button', { name: 'Submit', exact: true }).click();
      const created = page.getByRole('status').getByRole('link');
      await created.waitFor();
      const id = (await created.textContent()) ?? '';
      assert.match(id, /^req_/);
      const row = page.locator(`tr[data-request-id="${id}"]`);
      await row.locator('.badge-completed').waitFor();
      assert.equal(await row.getByRole('progressbar').getAttribute('aria-valuenow'), '100');

      // Submitted over the API: the detail page follows it live.
      const slowId = await submit(ALPHA, 'steps', { steps: 6, step_ms: 500 });
      await page.locator(`tr[data-request-id="${slowId}"]`).waitFor();
      await page.getByRole('link', { name: slowId }).click();
      await page.getByRole('heading', { name: `Request ${slowId}` }).waitFor();
      const bar = page.locator('main > section > [role=progressbar]');
      await bar.and(page.locator('[aria-valuenow]:not([aria-valuenow="0"]):not([aria-valuenow="100"])')).waitFor();
      const midway = Number(await bar.getAttribute('aria-valuenow'));
      assert.ok(midway > 0 && midway < 100, `progress midway: ${midway}`);
      await page.getByTestId('current-step').filter({ hasText: 'step' }).waitFor();
      await screenshot(page, 'request-running');
      await badge(page).filter({ hasText: 'completed' }).waitFor({ timeout: 20_000 });
      await bar.and(page.locator('[aria-valuenow="100"]')).waitFor();
      assert.match((await page.getByTestId('result').textContent()) ?? '', /"steps": 6/);
      assert.ok((await page.getByTestId('timeline').locator('li').count()) >= 6, 'the timeline lists the events');
      await page.getByRole('link', { name: 'Requests' }).first().click();
      await page.locator(`tr[data-request-id="${slowId}"] .badge-completed`).waitFor();
      await screenshot(page, 'requests');
    } finally {
      await page.close();
    }
  });

  test('cancels a running request', async () => {
    const id = await submit(ALPHA, 'steps', { steps: 100, step_ms: 1000 });
    const page = await signIn(ALPHA, `#/requests/${id}`);
    try {
      await badge(page).filter({ hasText: 'processing' }).waitFor();
      // Keyboard only: focus is on the page's heading; the next stop is the Cancel button.
      await page.locator('h1:focus').waitFor();
      await page.keyboard.press('Tab');
      await page.locator('button:focus', { hasText: 'Cancel request' }).waitFor();
      await page.keyboard.press('Enter');
      await badge(page).filter({ hasText: 'cancelled' }).waitFor();
      assert.equal((await statusOf(ALPHA, id)).status, 'cancelled');
      assert.match((await page.getByTestId('error').textContent()) ?? '', /cancelled/);
      assert.equal(await page.getByRole('button', { name: 'Cancel request' }).isDisabled(), true);
    } finally {
      await page.close();
    }
  });

  test('retries a failed request as a new one', async () => {
    const id = await submit(ALPHA, 'flaky', {});
    await waitFor(async () => (await statusOf(ALPHA, id)).status === 'failed', { what: 'the flaky request to fail' });
    const page = await signIn(ALPHA, `#/requests/${id}`);
    try {
      await page.getByTestId('error').filter({ hasText: 'first run fails' }).waitFor();
      await screenshot(page, 'request-failed');
      await page.getByRole('button', { name: 'Retry as a new request' }).click();
      await page.waitForURL((url) => /^#\/requests\/req_/.test(url.hash) && !url.hash.includes(id));
      await page.getByRole('link', { name: id }).waitFor();
      await badge(page).filter({ hasText: 'completed' }).waitFor();
      assert.match((await page.getByTestId('result').textContent()) ?? '', /"second": true/);
    } finally {
      await page.close();
    }
  });

  test('shows the webhook delivery log and redelivers', async () => {
    const delivered = receiver.next('/hook', 15_000);
    const id = await submit(ALPHA, 'echo', { hello: 'webhook' }, `&webhook_url=${encodeURIComponent(`${receiver.url}/hook`)}`);
    await delivered;
    const page = await signIn(ALPHA, `#/requests/${id}`);
    try {
      const row = page.locator('table.deliveries tbody tr');
      await row.locator('.delivery-delivered').waitFor();
      assert.match((await row.textContent()) ?? '', /200/);
      await screenshot(page, 'request-webhook');
      const again = receiver.next('/hook', 15_000);
      await row.getByRole('button', { name: 'Redeliver' }).click();
      const second = await again;
      assert.match(second.body, /webhook/);
      await row.filter({ hasText: 'series 2' }).locator('.delivery-delivered').waitFor();
    } finally {
      await page.close();
    }
  });

  test('HTML and script in inputs, results, errors and the search box are shown as text, never run', async () => {
    const echoId = await submit(ALPHA, 'echo', { text: XSS });
    const failId = await submit(ALPHA, 'fail', { message: XSS });
    await waitFor(async () => (await statusOf(ALPHA, failId)).status === 'failed', { what: 'the fail request to fail' });
    const page = await signIn(ALPHA, `#/requests/${echoId}`);
    try {
      await badge(page).filter({ hasText: 'completed' }).waitFor();
      assert.ok(((await page.getByTestId('result').textContent()) ?? '').includes('<script>window.__xss=2</script>'));
      await page.goto(`${server.url}/dashboard#/requests/${failId}`);
      await page.getByTestId('error').filter({ hasText: '<img src=x' }).waitFor();
      await page.goto(`${server.url}/dashboard#/requests`);
      await page.getByLabel('Find by request id').fill(XSS);
      await page.getByRole('button', { name: 'Find' }).click();
      await page.getByRole('alert').filter({ hasText: 'no request with this id' }).waitFor();
      assert.ok(((await page.getByRole('alert').textContent()) ?? '').includes(XSS));
      assert.equal(await page.evaluate('typeof window.__xss'), 'undefined');
      assert.equal(await page.locator('main img, main script').count(), 0);
      // And the CSP is in force: even a <script> element added to the page does not run.
      const inline = `(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.head.append(s); return typeof window.__inline; })()`;
      assert.equal(await page.evaluate(inline), 'undefined');
    } finally {
      await page.close();
    }
  });

  test('a tenant key sees only its tenant; the admin key sees all', async () => {
    const betaId = await submit(BETA, 'echo', { tenant: 'beta' });
    const alphaId = await submit(ALPHA, 'echo', { tenant: 'alpha' });
    const page = await signIn(ALPHA);
    try {
      await page.locator(`tr[data-request-id="${alphaId}"]`).waitFor();
      assert.equal(await page.locator(`tr[data-request-id="${betaId}"]`).count(), 0);
      await page.goto(`${server.url}/dashboard#/requests/${betaId}`);
      await page.getByRole('alert').filter({ hasText: 'There is no request with this id that this key may see.' }).waitFor();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API key').waitFor();
      assert.equal(await page.evaluate('sessionStorage.length'), 0);
    } finally {
      await page.close();
    }
    const admin = await signIn(ADMIN);
    try {
      await admin.locator(`tr[data-request-id="${betaId}"]`).waitFor();
      await admin.locator(`tr[data-request-id="${alphaId}"]`).waitFor();
      assert.match((await admin.getByTestId('who').textContent()) ?? '', /admin/);
    } finally {
      await admin.close();
    }
  });

  test('the operations page shows throughput, success rate, percentiles and queue depth with charts', async () => {
    const page = await signIn(ADMIN, '#/operations');
    try {
      const steps = page.locator('tr[data-operation="steps"]');
      await steps.waitFor();
      const cells = await steps.locator('td').allTextContents();
      assert.equal(cells.length, 8, cells.join('|'));
      assert.ok(Number(cells[2]) >= 3, `accepted: ${cells.join('|')}`);
      assert.match(cells[5] ?? '', /\d/, 'a p50 duration');
      const fail = await page.locator('tr[data-operation="fail"] td').allTextContents();
      assert.equal(fail[4], '0.0 %', `fail success rate: ${fail.join('|')}`);
      await page.locator('.operation-charts canvas').first().waitFor();
      assert.equal(await page.evaluate(UNLABELLED_CONTROLS), 0, 'every form control has a label');
      await screenshot(page, 'operations');
    } finally {
      await page.close();
    }
  });
});
