// Issue 5, item 11: with JavaScript disabled, the pages render and create and delete
// still work through plain forms.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, clickAsPerson } from '../lib/browser.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url, javaScriptEnabled: false };

async function submitAndWait(page, selector) {
  await Promise.all([page.waitForNavigation(), clickAsPerson(page, selector)]);
}

browserTest('without JavaScript a key is created, revealed once, filtered and deleted through plain forms', opts, async (s) => {
  const { page } = s;
  await s.login();
  // The page's own scripts did not run (DevTools can still evaluate, so ask the page).
  assert.equal(await page.evaluate(() => typeof window.htmx), 'undefined', 'JavaScript really is off');

  // A channel through its own page.
  await clickAsPerson(page, 'text=+ New channel');
  await page.waitForURL(/\/channels\/new$/);
  await page.fill('#channel-name', 'No Script');
  await submitAndWait(page, '#channel-form button[type=submit]');
  assert.match(page.url(), /\/channels$/);
  const row = page.locator('#channels-table tr', { hasText: 'No Script' });
  await clickAsPerson(page, row.locator('text=API Keys'));
  await page.waitForURL(/\/channels\/\d+\/keys$/);
  const keysUrl = page.url();
  await page.locator('.empty-state', { hasText: 'No API keys yet' }).waitFor();

  // Generate: the form is a page; "+ Add network" re-renders it with a new field.
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  await page.waitForURL(/\/keys\/new$/);
  await page.fill('#key-name', 'plain-form-key');
  await page.fill('#key-description', 'made without JavaScript');
  await page.check('#key-form input[name=scopes][value="verify"]');
  await submitAndWait(page, '#key-form button[name=add_cidr]');
  assert.equal(await page.inputValue('#key-name'), 'plain-form-key', 'typed values survive the + button');
  assert.equal(await page.isChecked('#key-form input[name=scopes][value="verify"]'), true);
  await page.fill('#cidr-0', '192.0.2.0/24');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    clickAsPerson(page, '#key-form button[name=save]'),
  ]);
  await page.waitForLoadState();
  assert.equal(response.headers()['cache-control'], 'no-store');

  // The reveal page: Close needs the box ticked (a required checkbox, no script).
  const key = await page.inputValue('#revealed-key');
  assert.match(key, /^lk_[A-Za-z0-9]{12}_[A-Za-z0-9]{48}$/);
  const keyId = key.split('_')[1];
  assert.match(await page.textContent('main'), /will not be shown again/);
  await clickAsPerson(page, '#reveal-close');
  await page.waitForTimeout(300);
  assert.ok(page.url().includes('/keys') && (await page.locator('#revealed-key').count()) === 1, 'Close without ticking stays on the reveal');
  await page.check('#key-saved');
  await submitAndWait(page, '#reveal-close');
  assert.ok(page.url().startsWith(keysUrl), `back on the keys page (${page.url()})`);
  const keyRow = page.locator(`tr#key-${keyId}`);
  await keyRow.waitFor();
  assert.ok(!(await page.content()).includes(key.slice(16)), 'the key is not on the keys page');
  // Back to the reveal: the response was `no-store`, so the browser will not show it
  // from its cache (Chromium refuses with ERR_CACHE_MISS rather than re-posting).
  await page.goBack().catch((e) => assert.match(e.message, /ERR_CACHE_MISS/));
  await page.waitForLoadState('load');
  await page.waitForTimeout(200);
  assert.ok(!(await page.content()).includes(key.slice(16)), 'going back does not show the key again');
  await page.goto(keysUrl);

  // The filter works as a plain form (it posts, so a pasted key stays out of URLs,
  // and lands on the filter's address).
  await page.fill('#key-filter', 'plain');
  await submitAndWait(page, '#keys-filter-form button[type=submit]');
  assert.equal(new URL(page.url()).searchParams.get('q'), 'plain');
  await keyRow.waitFor();
  await page.fill('#key-filter', 'nothing-like-it');
  await submitAndWait(page, '#keys-filter-form button[type=submit]');
  await page.locator('.empty-state', { hasText: 'No keys match' }).waitFor();
  await page.goto(keysUrl);

  // The page size picker has an Apply button when scripts cannot submit it.
  await page.selectOption('#page-size', '50');
  await submitAndWait(page, '.page-size button[type=submit]');
  assert.equal(new URL(page.url()).searchParams.get('size'), '50');

  // Deactivate through its confirmation page.
  await clickAsPerson(page, keyRow.locator('text=Deactivate'));
  await page.waitForURL(/\/confirm\/deactivate$/);
  await submitAndWait(page, 'form.confirm button[type=submit]');
  assert.equal((await keyRow.locator('.status-cell .badge').textContent()).trim(), 'Inactive');
  assert.match(await page.textContent('#toasts'), /“plain-form-key” deactivated\./);

  // Delete: the row menu is a <details>, which opens without script.
  await clickAsPerson(page, keyRow.locator('details.menu summary'));
  await clickAsPerson(page, keyRow.locator('.menu-items a', { hasText: 'Delete' }));
  await page.waitForURL(/\/confirm\/delete$/);
  assert.match(await page.textContent('main'), /This cannot be undone\./);
  await submitAndWait(page, 'form.confirm button[type=submit]');
  assert.ok(page.url().startsWith(keysUrl));
  assert.match(await page.textContent('#toasts'), /“plain-form-key” deleted\./);
  assert.equal(await keyRow.count(), 0);
  await page.locator('.empty-state', { hasText: 'No API keys yet' }).waitFor();

  // Logging out is a form too.
  await submitAndWait(page, 'text=Log out');
  assert.match(page.url(), /\/login\?logged_out=1$/);
});

browserTest('without JavaScript bulk actions go through a confirmation page and come back with the result', opts, async (s) => {
  const { page } = s;
  await s.login();
  const { createChannel, createKeys } = await import('../lib/app.mjs');
  const channel = await createChannel(page, 'No Script Bulk', 20);
  const keys = await createKeys(page, channel, ['plain-a', 'plain-b', 'plain-c']);
  await page.goto(`/channels/${channel}/keys?size=10`);
  // Two ticked boxes, then Deactivate in the bar: a plain GET form.
  await clickAsPerson(page, `#select-${keys[0].keyId}`);
  await clickAsPerson(page, `#select-${keys[2].keyId}`);
  await submitAndWait(page, '#bulk-form button[value=deactivate]');
  assert.match(page.url(), /\/keys\/bulk\/confirm\?/);
  assert.match(await page.textContent('main'), /Deactivate 2 keys\?/);
  await submitAndWait(page, 'form#bulk-confirm button[type=submit]');
  assert.match(page.url(), new RegExp(`/channels/${channel}/keys$`));
  assert.match(await page.textContent('#toasts'), /2 keys deactivated\./);
  assert.equal(await page.locator('tr.key-row[data-status=inactive]').count(), 2);
  assert.equal(await page.locator(`tr#key-${keys[1].keyId}`).getAttribute('data-status'), 'active');

  // Set expiry asks for the date on its confirmation page; a past date is refused there.
  await clickAsPerson(page, `#select-${keys[1].keyId}`);
  await submitAndWait(page, '#bulk-form button[value=expiry]');
  await page.fill('#bulk-expires', '2001-01-01T00:00');
  await submitAndWait(page, 'form#bulk-confirm button[type=submit]');
  assert.match(await page.textContent('#bulk-expires-error'), /Choose a time in the future/);
  await page.fill('#bulk-expires', '2031-05-04T10:30');
  await submitAndWait(page, 'form#bulk-confirm button[type=submit]');
  assert.match(await page.textContent('#toasts'), /1 key given the new expiry\./);
  assert.match(await page.locator(`tr#key-${keys[1].keyId} td[data-label=Expires]`).textContent(), /2031-05-04 10:30 UTC/);
});
