// Issue 14: rate limits, credits and metadata in the generate form (field errors kept
// beside the fields, every control reachable in the modal), the keys table showing the
// limit and credits, and the key page showing the window's use and the next refill.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, clickAsPerson, shot } from '../lib/browser.mjs';
import { createChannel } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

browserTest('a key gets limits, credits and metadata in the form; the table and key page show them', { baseURL: () => server.url }, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Metered');
  await page.goto(`/channels/${channel}/keys`);
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  const form = page.locator('#modal-stack dialog[open] #key-form');
  await form.waitFor();
  assert.equal(await form.locator('details.field-group').getAttribute('open'), null, 'the section starts closed');
  await page.fill('#key-name', 'metered');
  await clickAsPerson(page, form.locator('details.field-group > summary'));
  await page.fill('#key-limits', '100/fortnight');
  await page.fill('#key-credits', '500');
  await page.selectOption('#key-refill', 'monthly');
  await page.fill('#key-metadata', '{"plan": ');
  await clickAsPerson(page, form.locator('button[name=save]'));
  const again = page.locator('#modal-stack dialog[open] #key-form');
  await again.locator('#key-limits-error').waitFor();
  assert.match(await again.locator('#key-limits-error').textContent(), /second, minute, hour or day/);
  assert.match(await again.locator('#key-refill-amount-error').textContent(), /Refill to how many/);
  assert.match(await again.locator('#key-metadata-error').textContent(), /Not valid JSON/);
  assert.equal(await page.inputValue('#key-credits'), '500', 'what was typed is kept');
  assert.notEqual(await again.locator('details.field-group').getAttribute('open'), null, 'the section is open on errors');
  await shot(page, '14-key-form-limits-errors');

  await page.fill('#key-limits', '100/second, 10000/day');
  await page.fill('#key-refill-amount', '500');
  await page.fill('#key-metadata', '{"plan": "pro", "tenant": "acme"}');
  await clickAsPerson(page, again.locator('button[name=save]'));
  const reveal = page.locator('#modal-stack dialog[open]');
  await reveal.locator('#revealed-key').waitFor();
  const plain = await page.inputValue('#revealed-key');
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await reveal.waitFor({ state: 'detached' });

  const keyId = plain.split('_')[1];
  const row = page.locator(`tr#key-${keyId}`);
  await row.waitFor();
  assert.match(await row.locator('.limit-chip').textContent(), /100\/second, 10000\/day · 500 credits/);
  await shot(page, '14-keys-table-limits');

  await clickAsPerson(page, row.locator('a.key-link'));
  await page.locator('#rate-limits').waitFor();
  assert.match(await page.textContent('#rate-limits'), /10000\/day\s*— 0 of 10000 used now/);
  assert.match(await page.textContent('#credits'), /500 remaining · refilled monthly to 500, next \d{4}-\d{2}-01 00:00 UTC/);
  assert.match(await page.textContent('.metadata'), /"tenant": "acme"/);
  await shot(page, '14-key-page-limits', { fullPage: true });

  // A large limit's line wraps inside its card instead of running past its edge.
  await clickAsPerson(page, 'a >> text=Edit settings');
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();
  const edit = page.locator('#modal-stack dialog[open] #key-form');
  if ((await edit.locator('details.field-group').getAttribute('open')) === null) {
    await clickAsPerson(page, edit.locator('details.field-group > summary'));
  }
  await page.fill('#key-limits', '100/second, 1000000000/day');
  const saved = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().includes(`/keys/${keyId}`));
  // Saved from the key's own page, the edit reloads that page (HX-Redirect): wait for
  // that navigation rather than start one of our own, which it would interrupt.
  const reloaded = page.waitForResponse(
    (r) => r.request().resourceType() === 'document' && new URL(r.url()).pathname === `/keys/${keyId}`,
  );
  await clickAsPerson(page, edit.locator('button[name=save]'));
  assert.ok((await saved).status() < 400, 'the edit is saved');
  await reloaded;
  await page.waitForLoadState('load');
  await page.locator('#rate-limits').waitFor();
  assert.match(await page.textContent('#rate-limits'), /0 of 1000000000 used now/);
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const over = await page.locator('#rate-limits').evaluate((dd) => {
      const card = dd.closest('.card') ?? dd.parentElement;
      const edge = card.getBoundingClientRect().right;
      return [...dd.querySelectorAll('span, code')].map((e) => e.getBoundingClientRect().right - edge).filter((d) => d > 0.5);
    });
    assert.deepEqual(over, [], `at ${width} px the rate limits run past their card by ${over} px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // The Risks page lists keys with no rate limit (this one has one).
  await page.goto('/risks');
  assert.match(await page.textContent('main'), /No rate limit/);
});
