// Issue 15: the three-dot menu of the last rows was clipped by the table card, so
// Rename, Roll and Delete fell below its edge and a click landed on the pagination
// bar — on a channel with one key, and on All keys when a search finds one key:
// exactly where support revokes a leaked key. Every click here is a person's click:
// inside the viewport and not covered (clickAsPerson).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserTest, clickAsPerson, eventually } from '../lib/browser.mjs';
import { createChannel, createKey } from '../lib/app.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });
const opts = { baseURL: () => server.url };

async function menuItemsReachable(page, row, items = ['Rename', 'Roll…', 'Delete']) {
  for (const item of items) {
    await clickAsPerson(page, `${row} details.menu summary`);
    await clickAsPerson(page, `${row} .menu-items >> text=${item}`);
    await page.locator('#modal-stack dialog[open]').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#modal-stack dialog[open]').waitFor({ state: 'detached' });
  }
}

browserTest('the row menu of the only key opens fully visible, on the page, in the dialog and on All keys', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Single');
  const only = await createKey(page, channel, 'lonely-key');
  const row = `tr#key-${only.keyId}`;

  await page.goto(`/channels/${channel}/keys`);
  await menuItemsReachable(page, row);

  await page.goto('/channels');
  await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
  await page.locator('dialog.modal-wide[open]').waitFor();
  await menuItemsReachable(page, `dialog.modal-wide ${row}`);
  await page.keyboard.press('Escape');

  // All keys has no Roll (it is a search, not a channel's page).
  await page.goto(`/keys?q=${only.keyId}`);
  await menuItemsReachable(page, row, ['Rename', 'Delete']);
  // And support revokes it from there.
  await clickAsPerson(page, `${row} details.menu summary`);
  await clickAsPerson(page, `${row} .menu-items >> text=Delete`);
  await clickAsPerson(page, '#modal-stack dialog[open] button[type=submit]');
  await eventually(async () => (await page.locator(row).count()) === 0);
  assert.equal(await page.locator(row).count(), 0);
});
