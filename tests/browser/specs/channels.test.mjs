// The Channels page: create and edit channels in a dialog, open a channel's keys as a
// large dialog again and again, and as a page of its own.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createKeys } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url };

browserTest('channels are created and edited in a dialog, with errors shown next to the fields', opts, async (s) => {
  const { page } = s;
  await s.login();
  assert.equal(await page.locator('#channels-table tbody tr').count(), 1, 'only the built-in channel at first');
  assert.match(await page.textContent('#channels-table tbody tr'), /system\s*built-in/);

  await clickAsPerson(page, 'text=+ New channel');
  const dialog = page.locator('#modal dialog[open]');
  await dialog.waitFor();
  assert.equal(await dialog.locator('h2').textContent(), 'New channel');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.locator('#channel-name-error').waitFor();
  await page.fill('#channel-name', 'Mobile');
  await page.fill('#channel-limit', '0');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.locator('#channel-limit-error').waitFor();
  assert.equal(await page.inputValue('#channel-name'), 'Mobile', 'the typed name is kept');
  await page.fill('#channel-limit', '25');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.waitFor({ state: 'detached' });
  const row = page.locator('#channels-table tbody tr', { hasText: 'Mobile' });
  await row.waitFor();
  assert.equal((await row.locator('td[data-label=Limit]').textContent()).trim(), '25');

  // A taken name is refused.
  await clickAsPerson(page, 'text=+ New channel');
  await dialog.waitFor();
  await page.fill('#channel-name', 'Mobile');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await eventually(async () => /already exists/.test(await dialog.locator('#channel-name-error').textContent()));
  await clickAsPerson(page, dialog.locator('button', { hasText: 'Cancel' }));
  await dialog.waitFor({ state: 'detached' });

  // Edit: rename and go back to the default limit; the dialog closes with a toast.
  await clickAsPerson(page, row.locator('text=Edit'));
  await dialog.waitFor();
  assert.equal(await page.inputValue('#channel-name'), 'Mobile');
  assert.equal(await page.inputValue('#channel-limit'), '25');
  await page.fill('#channel-name', 'Mobile apps');
  await page.fill('#channel-limit', '');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: 'Channel "Mobile apps" saved.' }).waitFor();
  const renamed = page.locator('#channels-table tbody tr', { hasText: 'Mobile apps' });
  assert.match(await renamed.locator('td[data-label=Limit]').textContent(), /10\s*\(default\)/);

  // The edit dialog works again after a save (the container it lives in survives).
  await clickAsPerson(page, renamed.locator('text=Edit'));
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // The built-in channel keeps its name.
  await clickAsPerson(page, page.locator('#channels-table tbody tr', { hasText: 'system' }).locator('text=Edit'));
  await dialog.waitFor();
  assert.equal(await page.getAttribute('#channel-name', 'readonly'), '');
  await page.keyboard.press('Escape');
});

browserTest('API Keys opens the channel as a dialog any number of times, and as a page', opts, async (s) => {
  const { page } = s;
  await s.login();
  await clickAsPerson(page, 'text=+ New channel');
  await page.fill('#channel-name', 'Partners');
  await clickAsPerson(page, '#modal dialog[open] button[type=submit]');
  await page.locator('#modal dialog').waitFor({ state: 'detached' });
  await clickAsPerson(page, 'text=+ New channel');
  await page.fill('#channel-name', 'Billing');
  await clickAsPerson(page, '#modal dialog[open] button[type=submit]');
  await page.locator('#modal dialog').waitFor({ state: 'detached' });
  const id = (name) => page.locator('#channels-table tbody tr', { hasText: name }).getAttribute('id').then((x) => Number(x.split('-')[1]));
  const partners = await id('Partners');
  const billing = await id('Billing');
  await createKeys(page, partners, ['partner-a', 'partner-b']);
  await createKeys(page, billing, ['billing-a']);
  await page.goto('/channels');
  assert.equal((await page.textContent(`#channel-${partners} td[data-label=Keys]`)).trim(), '2');

  const dialog = page.locator('#modal dialog.modal-wide[open]');
  for (const [channel, names] of [[partners, ['partner-a', 'partner-b']], [billing, ['billing-a']], [partners, ['partner-a', 'partner-b']]]) {
    await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
    await dialog.waitFor();
    const shown = (await dialog.locator('#keys-results tbody .name-cell .cell-strong').allTextContents()).map((x) => x.trim()).sort();
    assert.deepEqual(shown, names);
    await clickAsPerson(page, dialog.locator('.modal-close'));
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await page.locator('#modal').count(), 1, 'the dialog container is still there');
    assert.match(page.url(), /\/channels$/);
  }

  // "Open as page" leaves the dialog for the full page.
  await clickAsPerson(page, `#channel-${billing} >> text=API Keys`);
  await dialog.waitFor();
  await Promise.all([page.waitForURL(new RegExp(`/channels/${billing}/keys$`)), clickAsPerson(page, dialog.locator('text=Open as page'))]);
  assert.equal(await page.locator('dialog[open]').count(), 0);
  assert.match(await page.textContent('h1'), /API Keys\s*·\s*Billing/);
  assert.match(await page.textContent('.breadcrumb'), /Channels\s*\/\s*Billing/);
  await clickAsPerson(page, '.breadcrumb >> text=Channels');
  await page.waitForURL(/\/channels$/);
});
