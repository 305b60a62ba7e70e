// Issue 5, items 5–8: rename (a taken name shows the message), deactivate and
// activate with confirmation, delete with the warning and the success toast, and edit
// every setting. Plus the generate form's field errors.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys, csrfPost } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url };
const topDialog = (page) => page.locator('#modal-stack dialog[open]');

async function openMenuItem(page, keyId, item) {
  const row = page.locator(`tr#key-${keyId}`);
  await clickAsPerson(page, row.locator('details.menu summary'));
  await clickAsPerson(page, row.locator('.menu-items a', { hasText: item }));
  await topDialog(page).waitFor();
}

browserTest('renaming to a taken name is refused with a message next to the field', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Renames');
  const [, beta] = await createKeys(page, channel, ['alpha', 'beta']);
  await page.goto(`/channels/${channel}/keys`);

  await openMenuItem(page, beta.keyId, 'Rename');
  const dialog = topDialog(page);
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Rename API key');
  assert.equal(await page.inputValue('#rename-name'), 'beta');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'rename-name');
  await page.fill('#rename-name', 'alpha');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  const error = dialog.locator('#rename-error');
  await error.waitFor();
  assert.equal((await error.textContent()).trim(), 'A key with this name already exists in this channel.');
  assert.equal(await page.getAttribute('#rename-name', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#rename-name', 'aria-describedby'), 'rename-error');
  assert.equal(await page.inputValue('#rename-name'), 'alpha', 'what was typed is kept');
  assert.equal((await page.locator(`tr#key-${beta.keyId} .name-cell .cell-strong`).textContent()).trim(), 'beta');

  // An empty name is refused too, then a free name is taken.
  await page.fill('#rename-name', '   ');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await eventually(async () => (await dialog.locator('#rename-error').textContent()).trim() === 'Enter a name.');
  await page.fill('#rename-name', 'beta-renamed');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: 'Renamed to “beta-renamed”.' }).waitFor();
  assert.equal((await page.locator(`tr#key-${beta.keyId} .name-cell .cell-strong`).textContent()).trim(), 'beta-renamed');
  await page.reload();
  assert.equal((await page.locator(`tr#key-${beta.keyId} .name-cell .cell-strong`).textContent()).trim(), 'beta-renamed');
});

browserTest('deactivate and activate ask for confirmation and swap only that row', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Toggles');
  const [one, two] = await createKeys(page, channel, ['one', 'two']);
  await page.goto(`/channels/${channel}/keys`);
  const row = page.locator(`tr#key-${one.keyId}`);
  const other = page.locator(`tr#key-${two.keyId}`);
  await page.evaluate((id) => { document.querySelector(`#key-${id}`).dataset.marker = 'untouched'; }, two.keyId);
  assert.equal((await row.locator('.status-cell .badge').textContent()).trim(), 'Active');

  // Cancel changes nothing.
  await clickAsPerson(page, row.locator('text=Deactivate'));
  let dialog = topDialog(page);
  await dialog.waitFor();
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Deactivate this key?');
  assert.match(await dialog.textContent(), /“one” will be refused by verification and the API at once/);
  await clickAsPerson(page, dialog.locator('button', { hasText: 'Cancel' }));
  await dialog.waitFor({ state: 'detached' });
  assert.equal((await row.locator('.status-cell .badge').textContent()).trim(), 'Active');

  // Confirm deactivates.
  await clickAsPerson(page, row.locator('text=Deactivate'));
  dialog = topDialog(page);
  await dialog.waitFor();
  await clickAsPerson(page, dialog.locator('button[type=submit]', { hasText: 'Deactivate' }));
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: '“one” deactivated.' }).waitFor();
  await eventually(async () => (await row.locator('.status-cell .badge').textContent()).trim() === 'Inactive');
  assert.equal(await row.evaluate((r) => r.classList.contains('is-inactive')), true, 'the row is shown as inactive');
  assert.equal(await row.locator('text=Activate').count(), 1);
  assert.equal(await row.locator('text=Deactivate').count(), 0);
  assert.equal(await page.getAttribute(`tr#key-${two.keyId}`, 'data-marker'), 'untouched', 'only that row was swapped');
  assert.equal((await other.locator('.status-cell .badge').textContent()).trim(), 'Active');
  await page.reload();
  assert.equal((await row.locator('.status-cell .badge').textContent()).trim(), 'Inactive', 'the change is saved');

  // Activate, confirmed.
  await clickAsPerson(page, row.locator('text=Activate'));
  dialog = topDialog(page);
  await dialog.waitFor();
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Activate this key?');
  assert.match(await dialog.textContent(), /“one” will be accepted again/);
  await clickAsPerson(page, dialog.locator('button[type=submit]', { hasText: 'Activate' }));
  await dialog.waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: '“one” activated.' }).waitFor();
  await eventually(async () => (await row.locator('.status-cell .badge').textContent()).trim() === 'Active');
  await eventually(async () => (await row.evaluate((r) => r.classList.contains('is-inactive'))) === false);
});

browserTest('delete warns that it cannot be undone, removes the row and shows a success toast', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Deletes');
  const [doomed, kept] = await createKeys(page, channel, ['doomed', 'kept']);

  // From the keys dialog over the Channels page: the channel's count follows.
  await page.goto('/channels');
  assert.equal((await page.textContent(`#channel-${channel} td[data-label=Keys]`)).trim(), '2');
  await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
  const keys = page.locator('dialog.modal-wide[open]');
  await keys.waitFor();
  assert.match(await keys.locator('.keys-count').textContent(), /2\s*of\s*10 keys/);

  await openMenuItem(page, doomed.keyId, 'Delete');
  const dialog = topDialog(page);
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Delete this key?');
  assert.match(await dialog.textContent(), /“doomed” will stop working at once and be removed\. This cannot be undone\./);
  // The safe choice has focus.
  assert.equal((await page.evaluate(() => document.activeElement.textContent)).trim(), 'Cancel');
  await clickAsPerson(page, dialog.locator('button[type=submit]', { hasText: 'Delete key' }));
  await dialog.waitFor({ state: 'detached' });
  const toast = page.locator('.toast-success', { hasText: '“doomed” deleted.' });
  await toast.waitFor();
  assert.equal(await toast.getAttribute('role'), 'status');
  // Over the keys dialog the toast shows above it (not under its backdrop, inert).
  assert.equal(await toast.evaluate((t) => t.closest('dialog[open]') !== null && t.closest('[aria-live]') !== null), true, 'the toast is inside the open dialog, in a live region');
  await page.locator(`tr#key-${doomed.keyId}`).waitFor({ state: 'detached' });
  assert.equal(await page.locator(`tr#key-${kept.keyId}`).count(), 1);
  await eventually(async () => /1\s*of\s*10 keys/.test(await keys.locator('.keys-count').textContent()));
  assert.equal(await keys.count(), 1, 'the keys dialog stays open');
  await eventually(async () => (await page.textContent(`#channel-${channel} td[data-label=Keys]`)).trim() === '1');

  // The toast can be dismissed, and goes away by itself.
  await clickAsPerson(page, toast.locator('[data-dismiss-toast]'));
  await toast.waitFor({ state: 'detached' });

  // It stays deleted.
  await page.goto(`/channels/${channel}/keys`);
  assert.equal(await page.locator(`tr#key-${doomed.keyId}`).count(), 0);
  assert.equal(await page.locator(`tr#key-${kept.keyId}`).count(), 1);
});

browserTest('the pencil edits every setting of a key', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Edits');
  const [key] = await createKeys(page, channel, ['editable'], { scopes: ['keys:read'] });
  await page.goto(`/channels/${channel}/keys`);
  const row = page.locator(`tr#key-${key.keyId}`);
  const shownKey = (await row.locator('.key-code').textContent()).trim();

  await clickAsPerson(page, row.locator('a[title=Edit]'));
  const dialog = topDialog(page);
  await dialog.waitFor();
  assert.equal(await dialog.locator('#stack-modal-title').textContent(), 'Edit API key');
  assert.equal(await page.inputValue('#key-name'), 'editable');
  assert.equal(await dialog.locator('button[name=save]').textContent(), 'Save changes');

  await page.fill('#key-name', 'edited');
  await page.fill('#key-description', 'Used by the nightly export');
  await page.fill('#key-expires', '2031-05-04T10:30');
  await dialog.locator('input[name=scopes][value="keys:read"]').uncheck();
  await dialog.locator('input[name=scopes][value="keys:write"]').check();
  await dialog.locator('input[name=scopes][value="verify"]').check();
  // Networks are added one at a time with "+ Add network".
  await clickAsPerson(page, dialog.locator('button[name=add_cidr]'));
  await page.locator('#cidr-0').waitFor();
  assert.equal(await page.inputValue('#key-name'), 'edited', 'adding a network keeps what was typed');
  await page.fill('#cidr-0', '203.0.113.0/24');
  await clickAsPerson(page, dialog.locator('button[name=add_cidr]'));
  await page.locator('#cidr-1').waitFor();
  await page.fill('#cidr-1', '2001:db8::/32');
  await clickAsPerson(page, dialog.locator('button[name=add_cidr]'));
  await page.locator('#cidr-2').waitFor();
  await page.fill('#cidr-2', '198.51.100.7/32');
  // ... and removed with ×.
  await clickAsPerson(page, dialog.locator('button[name=remove_cidr][value="2"]'));
  await page.locator('#cidr-2').waitFor({ state: 'detached' });
  assert.equal(await page.inputValue('#cidr-1'), '2001:db8::/32');
  await page.fill('#key-postback', 'http://127.0.0.1:9/latchkey');
  await dialog.locator('input[name=off_the_record]').check();
  await dialog.locator('input[name=enabled]').uncheck();
  await clickAsPerson(page, dialog.locator('button[name=save]'));
  // Its first POSTback URL: the signing secret is revealed once, in the same modal.
  await page.locator('#revealed-secret').waitFor({ state: 'visible' });
  assert.match(await page.inputValue('#revealed-secret'), /^whsec_/);
  await page.locator('.toast-success', { hasText: 'Saved “edited”.' }).waitFor();
  await page.locator('#key-saved').check();
  await page.locator('#reveal-close').waitFor({ state: 'visible' });
  await clickAsPerson(page, page.locator('#reveal-close'));
  await dialog.waitFor({ state: 'detached' });

  // The row shows the new settings; the key itself did not change.
  await eventually(async () => (await row.locator('.name-cell .cell-strong').textContent()).trim() === 'edited');
  assert.equal((await row.locator('.status-cell .badge').textContent()).trim(), 'Inactive');
  assert.deepEqual((await row.locator('.badge-scope').allTextContents()).map((x) => x.trim()), ['keys:write', 'verify']);
  const expires = (await row.locator('td[data-label=Expires]').textContent()).trim();
  assert.ok(expires.startsWith('2031-05-04 10:30 UTC'), expires);
  assert.match(expires, /in [0-9]+ years$/, 'how far off, beside the date');
  assert.equal(await row.locator('.tip').getAttribute('data-tip'), 'Used by the nightly export');
  assert.equal((await row.locator('.key-code').textContent()).trim(), shownKey);

  // Every setting was saved: the form shows them again after a reload.
  await page.reload();
  await clickAsPerson(page, row.locator('a[title=Edit]'));
  await topDialog(page).waitFor();
  assert.equal(await page.inputValue('#key-name'), 'edited');
  assert.equal(await page.inputValue('#key-description'), 'Used by the nightly export');
  assert.equal(await page.inputValue('#key-expires'), '2031-05-04T10:30');
  const scopes = await page.$$eval('#key-form input[name=scopes]', (els) => els.filter((e) => e.checked).map((e) => e.value));
  assert.deepEqual(scopes, ['keys:write', 'verify']);
  const cidrs = await page.$$eval('#key-form input[name=cidr]', (els) => els.map((e) => e.value));
  assert.deepEqual(cidrs, ['203.0.113.0/24', '2001:db8::/32']);
  assert.equal(await page.inputValue('#key-postback'), 'http://127.0.0.1:9/latchkey');
  assert.equal(await page.isChecked('#key-form input[name=off_the_record]'), true);
  assert.equal(await page.isChecked('#key-form input[name=enabled]'), false);

  // And back: clear the optional settings.
  await page.fill('#key-description', '');
  await page.fill('#key-expires', '');
  await clickAsPerson(page, '#key-form button[name=remove_cidr][value="1"]');
  await page.locator('#cidr-1').waitFor({ state: 'detached' });
  await clickAsPerson(page, '#key-form button[name=remove_cidr][value="0"]');
  await page.locator('#cidr-0').waitFor({ state: 'detached' });
  await page.fill('#key-postback', '');
  await page.uncheck('#key-form input[name=off_the_record]');
  await page.check('#key-form input[name=enabled]');
  await clickAsPerson(page, '#key-form button[name=save]');
  await topDialog(page).waitFor({ state: 'detached' });
  await eventually(async () => (await row.locator('.status-cell .badge').textContent()).trim() === 'Active');
  assert.equal((await row.locator('td[data-label=Expires]').textContent()).trim(), 'Never');
  assert.equal(await row.locator('.tip').count(), 0, 'no description, no icon');
});

// htmx takes over swapped-in content only when it settles; with a settle delay, a click
// in that gap submitted the new form natively (a full page load, and in CI once a lost
// toast). Clicking Save in the very task that swaps the form in must stay in the page.
browserTest('a click the moment a form is swapped in is still handled in the page', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Fast clicks');
  const [key] = await createKeys(page, channel, ['quick']);
  await page.goto(`/channels/${channel}/keys`);
  await clickAsPerson(page, page.locator(`tr#key-${key.keyId} a[title=Edit]`));
  await topDialog(page).waitFor();
  await page.fill('#key-name', 'quicker');
  await page.evaluate(() => { window.__sameDocument = true; });
  await page.evaluate(() => new Promise((resolve) => {
    const watch = new MutationObserver(() => {
      const field = document.getElementById('cidr-0');
      if (!field) return;
      watch.disconnect();
      field.value = '10.0.0.0/8';
      document.querySelector('#key-form button[name=save]').click();
      resolve();
    });
    watch.observe(document.body, { childList: true, subtree: true });
    document.querySelector('#key-form button[name=add_cidr]').click();
  }));
  await topDialog(page).waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: 'Saved “quicker”.' }).waitFor();
  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, 'no page load happened');
  await clickAsPerson(page, page.locator(`tr#key-${key.keyId} a[title=Edit]`));
  await topDialog(page).waitFor();
  assert.deepEqual(await page.$$eval('#key-form input[name=cidr]', (els) => els.map((e) => e.value)), ['10.0.0.0/8']);
});

browserTest('the generate form shows field errors next to the fields and keeps what was typed', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Errors');
  await createKeys(page, channel, ['taken']);
  await page.goto(`/channels/${channel}/keys`);
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  const dialog = topDialog(page);
  await dialog.waitFor();

  await page.fill('#key-name', 'taken');
  await page.fill('#key-description', 'kept description');
  await page.fill('#key-expires', '2001-01-01T00:00');
  await clickAsPerson(page, dialog.locator('button[name=add_cidr]'));
  await page.locator('#cidr-0').waitFor();
  await page.fill('#cidr-0', '10.0.0.1/8');
  await page.fill('#key-postback', 'ftp://example.com/x');
  await dialog.locator('input[name=scopes][value="verify"]').check();
  await clickAsPerson(page, dialog.locator('button[name=save]'));

  await dialog.locator('#key-expires-error').waitFor();
  assert.match(await dialog.locator('#key-expires-error').textContent(), /future/);
  assert.match(await dialog.locator('#cidr-0-error').textContent(), /Host bits are set: did you mean 10\.0\.0\.0\/8\?/);
  assert.ok((await dialog.locator('#key-postback-error').textContent()).trim().length > 0);
  for (const id of ['key-expires', 'cidr-0', 'key-postback']) {
    assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'true', `#${id} is marked invalid`);
  }
  assert.equal(await page.inputValue('#key-name'), 'taken');
  assert.equal(await page.inputValue('#key-description'), 'kept description');
  assert.equal(await page.inputValue('#cidr-0'), '10.0.0.1/8');
  assert.equal(await page.isChecked('#key-form input[name=scopes][value="verify"]'), true);

  // Fix those; the taken name is refused next.
  await page.fill('#key-expires', '');
  await page.fill('#cidr-0', '10.0.0.0/8');
  await page.fill('#key-postback', 'http://127.0.0.1:9/x');
  await clickAsPerson(page, dialog.locator('button[name=save]'));
  await eventually(async () => /already exists/.test(await dialog.locator('#key-name-error').textContent()));
  assert.equal(await dialog.locator('#key-postback-error').count(), 0);
  assert.equal(await page.inputValue('#cidr-0'), '10.0.0.0/8');

  await page.fill('#key-name', 'fresh');
  await clickAsPerson(page, dialog.locator('button[name=save]'));
  await dialog.locator('#revealed-key').waitFor();
});

browserTest('errors of row actions appear as toasts, also above an open modal', opts, async (s) => {
  const { page } = s;
  // The server answers 404 for a key that is gone; Chromium and htmx log those answers.
  s.allow(/status of 404|Response Status Error Code 404/);
  await s.login();
  const channel = await createChannel(page, 'Vanishing');
  const [gone, alsoGone] = await createKeys(page, channel, ['gone-1', 'gone-2']);
  await page.goto(`/channels/${channel}/keys`);

  // Someone else deletes the key while this page shows it.
  await csrfPost(page, `/keys/${gone.keyId}/delete`, []);
  await clickAsPerson(page, `tr#key-${gone.keyId} >> text=Deactivate`);
  const toast = page.locator('.toast-error', { hasText: 'That page or item does not exist' });
  await toast.waitFor();
  assert.equal(await toast.getAttribute('role'), 'alert');
  assert.equal(await page.locator('dialog[open]').count(), 0, 'no modal for a missing key');
  assert.match(await page.textContent('h1'), /API Keys/, 'the page is still there, not an error page');

  // With the confirmation open, the key disappears; confirming shows the error above it.
  await clickAsPerson(page, `tr#key-${alsoGone.keyId} >> text=Deactivate`);
  const modal = page.locator('#modal-stack dialog[open]');
  await modal.locator('form.confirm').waitFor();
  await csrfPost(page, `/keys/${alsoGone.keyId}/delete`, []);
  await clickAsPerson(page, modal.locator('button[type=submit]'));
  const second = page.locator('.toast-error', { hasText: 'That page or item does not exist' }).last();
  await eventually(async () => (await page.locator('.toast-error').count()) === 2);
  assert.equal(await second.evaluate((t) => t.closest('dialog[open]') !== null), true, 'the error shows inside the open modal, above its backdrop');
  await clickAsPerson(page, second.locator('[data-dismiss-toast]'));
  await eventually(async () => (await page.locator('.toast-error').count()) === 1);
});

browserTest('after a delete the page range counts one key fewer', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Counting');
  const [doomed] = await createKeys(page, channel, ['count-1', 'count-2', 'count-3']);
  await page.goto(`/channels/${channel}/keys`);
  assert.equal((await page.textContent('.page-range')).trim(), '1–3 of 3');
  await openMenuItem(page, doomed.keyId, 'Delete');
  await clickAsPerson(page, topDialog(page).locator('button[type=submit]'));
  await page.locator(`tr#key-${doomed.keyId}`).waitFor({ state: 'detached' });
  await eventually(async () => /2\s*of\s*10 keys/.test(await page.textContent('.keys-count')));
  await eventually(async () => {
    const range = (await page.textContent('.page-range')).trim();
    assert.equal(range, '1–2 of 2', `after the delete the range says “${range}”`);
  }, { timeout: 2000 });
});

browserTest('a delete on the All keys page also moves its range', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Everywhere');
  const [doomed] = await createKeys(page, channel, ['everywhere-1', 'everywhere-2', 'everywhere-3']);
  await page.goto('/keys?q=everywhere-');
  assert.equal((await page.textContent('.page-range')).trim(), '1–3 of 3');
  await openMenuItem(page, doomed.keyId, 'Delete');
  await clickAsPerson(page, topDialog(page).locator('button[type=submit]'));
  await page.locator('.toast-success', { hasText: '“everywhere-1” deleted.' }).waitFor();
  await page.locator(`tr#key-${doomed.keyId}`).waitFor({ state: 'detached' });
  await eventually(async () => {
    const range = (await page.textContent('.page-range')).trim();
    assert.equal(range, '1–2 of 2', `after the delete the range says “${range}”`);
  }, { timeout: 2000 });
  // The filter is kept: the page still shows only the matching keys.
  assert.equal(await page.inputValue('#key-filter'), 'everywhere-');
  assert.equal(await page.locator('#keys-results tbody tr[id^=key-]').count(), 2);
});
