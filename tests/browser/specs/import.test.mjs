// Issue 15, item 2: importing keys of another system from a channel's keys page: the
// file picker fills the text, a bad row in the middle is reported by line and nothing
// is saved; fixed, every key is imported and marked in the table.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer } from '../lib/server.mjs';
import { browserTest, clickAsPerson, shot } from '../lib/browser.mjs';
import { createChannel } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const sha256 = (s) => createHash('sha256').update(s).digest('hex');

browserTest('an import with a bad row shows each problem by line, then imports when fixed', {
  baseURL: () => server.url,
}, async (s) => {
  const { page } = s;
  s.allow(/status of 422/);
  await s.login();
  const id = await createChannel(page, 'Legacy gateway', 10);
  await page.goto(`/channels/${id}/keys`);

  await clickAsPerson(page, '#keys-stats >> text=Import…');
  const dialog = page.locator('#modal-stack dialog[open]');
  await dialog.locator('#import-form').waitFor();
  assert.equal(await page.textContent('#modal-stack #stack-modal-title'), 'Import keys');

  // The file picker (shown because JavaScript runs) reads the file into the text.
  const bad = `name,description,scopes,sha256\nbilling,"old gateway",verify,${sha256('sk_old_1')}\nreports,,verify,not-hex\nexports,,nope,${sha256('sk_old_3')}\n`;
  await page.setInputFiles('#import-file', { name: 'keys.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
  await page.waitForFunction(() => document.getElementById('import-text').value.startsWith('name,'));

  await clickAsPerson(page, '#import-form button[type=submit]');
  const errors = dialog.locator('#import-errors');
  await errors.waitFor();
  const text = await errors.textContent();
  assert.match(text, /Nothing was imported/);
  assert.match(text, /3\s*sha256/);
  assert.match(text, /4\s*scopes/);
  assert.equal(await page.inputValue('#import-text'), bad, 'what was sent is kept');
  await shot(page, 'import-form-error');
  assert.equal(await page.locator('#keys-results .key-row').count(), 0, 'nothing saved');

  const good = `name,description,scopes,sha256\nbilling,"old gateway",verify,${sha256('sk_old_1')}\nreports,,verify,${sha256('sk_old_2')}\n`;
  await page.fill('#import-text', good);
  // A person scrolls the dialog down to its button when the problems pushed it down.
  await page.locator('#import-form button[type=submit]').scrollIntoViewIfNeeded();
  await clickAsPerson(page, '#import-form button[type=submit]');
  await page.locator('.toast-success', { hasText: 'Imported 2 keys into “Legacy gateway”.' }).waitFor();
  await page.locator('#modal-stack dialog[open]').waitFor({ state: 'detached' });
  await page.locator('#keys-results .key-row').nth(1).waitFor();
  assert.equal(await page.locator('#keys-results .badge-imported').count(), 2);
  await shot(page, 'imported-keys');
});
