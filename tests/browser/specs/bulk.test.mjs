// Issue 15: bulk actions. Select rows, a whole page, then "all N matching" across
// pages; the confirmation states the count; the result is announced; all by mouse
// (clickAsPerson: inside the viewport, not covered) and by keyboard.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserTest, clickAsPerson, eventually, tabTo, describeFocus } from '../lib/browser.mjs';
import { createChannel, createKeys } from '../lib/app.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });
const opts = { baseURL: () => server.url };

const status = (page) => page.locator('#bulk-status').textContent();

browserTest('selecting across pages deactivates every matching key after a confirmation that states the count', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Bulk', 100);
  const names = Array.from({ length: 23 }, (_, i) => `batch-${String(i).padStart(2, '0')}`);
  await createKeys(page, channel, names);
  await createKeys(page, channel, ['keeper-a', 'keeper-b']);
  await page.goto(`/channels/${channel}/keys?q=batch&size=10`);
  assert.equal(await page.locator('.page-range').textContent(), '1–10 of 23');
  // Nothing selected: the actions wait.
  assert.equal(await page.locator('#bulk-form button[value=deactivate]').isDisabled(), true);

  const rows = page.locator('tr.key-row input[data-bulk-row]');
  await clickAsPerson(page, `tr.key-row:nth-child(2) input[data-bulk-row]`);
  await eventually(async () => (await status(page)) === '1 key selected.');
  assert.equal(await page.locator('#bulk-form button[value=deactivate]').isDisabled(), false);
  assert.equal(await page.locator('#bulk-page').evaluate((el) => el.indeterminate), true);

  await clickAsPerson(page, '#bulk-page');
  await eventually(async () => (await status(page)) === '10 keys selected.');
  assert.equal(await rows.evaluateAll((els) => els.every((e) => e.checked)), true);

  await clickAsPerson(page, '[data-bulk-all]');
  await eventually(async () => (await status(page)) === 'All 23 matching keys selected.');
  assert.equal(await page.locator('#bulk-status').getAttribute('aria-live'), 'polite');
  await s.shot('bulk-bar-selection');

  await clickAsPerson(page, '#bulk-form button[value=deactivate]');
  const dialog = page.locator('#modal-stack dialog[open]');
  await dialog.waitFor();
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Deactivate 23 keys?');
  // Focus moved into the dialog (on Cancel, the safe choice).
  assert.match(await describeFocus(page), /button "Cancel"/);
  await s.shot('bulk-confirm-modal');
  await clickAsPerson(page, '#modal-stack dialog[open] button[type=submit]');
  await dialog.waitFor({ state: 'detached' });

  // The result is announced (the toasts are a live region) and the table refreshed.
  const toast = page.locator('#toasts [data-toast]', { hasText: '23 keys deactivated.' });
  await toast.waitFor();
  assert.equal(await page.locator('#toasts').getAttribute('aria-live'), 'polite');
  await eventually(async () => (await page.locator('tr.key-row[data-status=inactive]').count()) === 10);
  await eventually(async () => (await status(page)) !== 'All 23 matching keys selected.');
  // The other pages too; the keys outside the filter were left alone.
  await page.locator('a[rel=next]').scrollIntoViewIfNeeded(); // a person scrolls the page
  await clickAsPerson(page, 'a[rel=next]');
  await eventually(async () => (await page.locator('.page-range').textContent()) === '11–20 of 23');
  assert.equal(await page.locator('tr.key-row[data-status=active]').count(), 0);
  await page.goto(`/channels/${channel}/keys?q=keeper`);
  assert.equal(await page.locator('tr.key-row[data-status=active]').count(), 2);
});

browserTest('bulk actions work from the keyboard: checkboxes, the action bar and the modal', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Keys by keyboard', 20);
  const [first] = await createKeys(page, channel, ['kb-one', 'kb-two', 'kb-three']);
  await page.goto(`/channels/${channel}/keys`);
  await page.locator('#key-filter').focus();
  await tabTo(page, `#select-${first.keyId}`);
  await page.keyboard.press('Space');
  await eventually(async () => (await status(page)) === '1 key selected.');
  // The action bar is reachable with Tab (it sits before the table).
  await tabTo(page, '#bulk-form button[value=delete]', { back: true });
  await page.keyboard.press('Enter');
  const dialog = page.locator('#modal-stack dialog[open]');
  await dialog.waitFor();
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Delete 1 key?');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // Focus goes back to the button that opened it.
  assert.match(await describeFocus(page), /button "Delete"/);
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  await tabTo(page, '#modal-stack dialog[open] button[type=submit]');
  await page.keyboard.press('Enter');
  await page.locator('#toasts [data-toast]', { hasText: '1 key deleted.' }).waitFor();
  await eventually(async () => (await page.locator(`tr#key-${first.keyId}`).count()) === 0);
});

browserTest('the Channels page warns about keys expiring within 7 days and links to them', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Expiring soon', 20);
  const soon = new Date(Date.now() + 3 * 86400e3).toISOString().slice(0, 16);
  await createKeys(page, channel, ['short-lived'], { extra: [['expires_at', soon]] });
  await createKeys(page, channel, ['long-lived']);
  await page.goto('/channels');
  const banner = page.locator('#expiry-banner');
  await banner.waitFor();
  assert.match(await banner.textContent(), /1 key expires within 7 days/);
  await s.shot('channels-expiry-banner');
  await clickAsPerson(page, '#expiry-banner a.btn');
  await page.waitForURL(/risk=expiring/);
  assert.equal(await page.locator('tr.key-row').count(), 1);
  assert.match(await page.locator('tr.key-row td[data-label=Expires]').textContent(), /in 2 days|in 3 days|in 71 hours|in 72 hours/);
  // The date stays on one line at 1280 px.
  const lines = await page.locator('tr.key-row td[data-label=Expires] .nowrap').evaluate((el) => el.getClientRects().length);
  assert.equal(lines, 1);
});
