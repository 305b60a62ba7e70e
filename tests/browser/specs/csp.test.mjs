// Issue 5, item 13: no console errors and no CSP violations. Every browser test fails
// on those already (lib/browser.mjs); this file proves the detector works, that the
// policy really is strict, and walks every page once more with nothing else going on.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url };

browserTest('the detector catches CSP violations and console errors (so the other tests can fail)', opts, async (s) => {
  const { page } = s;
  const res = await page.goto('/login');
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self'(;|$)/, 'scripts only from the app itself');
  assert.match(csp, /style-src 'self'(;|$)/, 'no inline styles either');
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);

  // An inline script and an inline style are refused by the browser and reported.
  await page.evaluate(() => {
    const sc = document.createElement('script');
    sc.textContent = 'window.__ranInline = true';
    document.body.appendChild(sc);
    const div = document.createElement('div');
    div.innerHTML = '<p style="color: red">inline style</p>';
    document.body.appendChild(div);
  });
  assert.equal(await page.evaluate(() => window.__ranInline), undefined, 'the inline script did not run');
  await page.evaluate(() => console.error('a deliberate console error'));
  await page.evaluate(() => setTimeout(() => { throw new Error('a deliberate uncaught error'); }, 0));
  await eventually(() => {
    const kinds = new Set(s.problems.map((p) => p.kind));
    for (const k of ['csp', 'console', 'pageerror']) assert.ok(kinds.has(k), `a ${k} problem was recorded: ${JSON.stringify(s.problems)}`);
    assert.ok(s.problems.some((p) => p.kind === 'csp' && /script-src/.test(p.text)), 'the script violation names script-src');
    assert.ok(s.problems.some((p) => p.kind === 'csp' && /style-src/.test(p.text)), 'the style violation names style-src');
  });
  assert.throws(() => s.assertNoProblems(), /the pages reported errors/);
  // This test provoked them on purpose.
  s.problems.length = 0;
});

browserTest('every page and modal loads with no console error, CSP violation or failed asset', { ...opts, timeout: 90000 }, async (s) => {
  const { page } = s;
  const failed = [];
  page.on('requestfailed', (r) => { if (['script', 'stylesheet', 'image', 'font'].includes(r.resourceType())) failed.push(`${r.url()} ${r.failure()?.errorText}`); });
  page.on('response', (r) => { if (r.status() >= 400 && ['script', 'stylesheet', 'image', 'font'].includes(r.request().resourceType())) failed.push(`${r.status()} ${r.url()}`); });
  await page.goto('/login');
  await s.login();
  const channel = await createChannel(page, 'Clean');
  const [key] = await createKeys(page, channel, ['clean-one', 'clean-two'], { description: 'tooltip text' });
  for (const path of ['/channels', `/channels/${channel}/keys`, `/channels/${channel}/keys?q=clean&size=10&sort=name`,
    `/channels/${channel}/keys/new`, `/keys/${key.keyId}/edit`, `/keys/${key.keyId}/rename`,
    `/keys/${key.keyId}/confirm/deactivate`, `/keys/${key.keyId}/confirm/delete`, '/channels/new', `/channels/${channel}/edit`]) {
    await page.goto(path);
    await page.waitForLoadState('load');
    // The app's scripts ran (htmx is there) under the strict policy.
    assert.equal(await page.evaluate(() => typeof window.htmx), 'object', `htmx runs on ${path}`);
  }
  // Dialogs and their swaps.
  await page.goto('/channels');
  await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
  await page.locator('dialog.modal-wide[open]').waitFor();
  await clickAsPerson(page, 'dialog.modal-wide #keys-stats >> text=+ Generate API Key');
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();
  await page.fill('#key-name', 'clean-three');
  await clickAsPerson(page, '#key-form button[name=save]');
  await page.locator('#revealed-key').waitFor();
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await page.locator('dialog.modal-wide .tip').first().hover();
  await page.locator('dialog.modal-wide #key-filter').fill('clean-t');
  await eventually(async () => (await page.locator('dialog.modal-wide #keys-results tbody tr').count()) === 2);
  await page.keyboard.press('Escape');
  await page.waitForTimeout(300);
  assert.deepEqual(failed, [], 'every asset loaded');
});
