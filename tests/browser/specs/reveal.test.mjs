// Issue 5, item 2: create a key and see the reveal modal; Copy puts the key on the
// clipboard; Close stays disabled until "I have saved this key" is ticked; the key is
// never shown again after closing.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const KEY_FORMAT = /^lk_([A-Za-z0-9]{12})_[A-Za-z0-9]{48}$/;

browserTest('a new key is revealed once, copied, acknowledged and never shown again', {
  baseURL: () => server.url,
  permissions: ['clipboard-read', 'clipboard-write'],
}, async (s) => {
  const { page } = s;
  await s.login();

  // A channel, made through the "+ New channel" dialog.
  await clickAsPerson(page, 'text=+ New channel');
  const channelDialog = page.locator('dialog[open]');
  await channelDialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'channel-name', 'the name field has focus');
  await page.fill('#channel-name', 'Payments');
  await clickAsPerson(page, channelDialog.locator('button[type=submit]'));
  await channelDialog.waitFor({ state: 'detached' });
  await page.locator('.toast-success', { hasText: 'Channel "Payments" created.' }).waitFor();
  const row = page.locator('#channels-table tr', { hasText: 'Payments' });
  assert.equal((await row.locator('td[data-label=Keys]').textContent()).trim(), '0');

  // Its keys open as a large dialog over the Channels page.
  await clickAsPerson(page, row.locator('text=API Keys'));
  const keysDialog = page.locator('dialog.modal-wide[open]');
  await keysDialog.waitFor();
  assert.match(await keysDialog.locator('#keys-title').textContent(), /API Keys\s*·\s*Payments/);
  await keysDialog.locator('.empty-state', { hasText: 'No API keys yet' }).waitFor();
  assert.match(page.url(), /\/channels$/, 'opening the dialog does not change the address');

  // Generate.
  await clickAsPerson(page, keysDialog.locator('#keys-stats >> text=+ Generate API Key'));
  const form = page.locator('#modal-stack dialog[open] #key-form');
  await form.waitFor();
  assert.equal(await page.textContent('#modal-stack #stack-modal-title'), 'Generate API key');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name');
  await page.fill('#key-name', 'ci-deploy');
  await page.fill('#key-description', 'Deploys from CI');
  await form.locator('input[name=scopes][value="keys:read"]').check();
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && /\/channels\/\d+\/keys$/.test(r.url())),
    clickAsPerson(page, form.locator('button[name=save]')),
  ]);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()['cache-control'], 'no-store', 'the reveal response must not be cached');

  // The reveal modal.
  const reveal = page.locator('#modal-stack dialog[open]');
  await reveal.locator('#revealed-key').waitFor();
  assert.equal(await reveal.locator('#stack-modal-title').textContent(), 'Your new API key');
  const key = await page.inputValue('#revealed-key');
  const m = KEY_FORMAT.exec(key);
  assert.ok(m, `the key has the documented 64-character format: ${key.length} chars`);
  const keyId = m[1];
  assert.equal(await page.getAttribute('#revealed-key', 'readonly'), '', 'the key field is read-only');
  assert.match(await reveal.textContent(), /will not be shown again/);
  assert.equal(await reveal.locator('.modal-close').count(), 0, 'no × to dismiss the reveal before acknowledging');

  // Close stays disabled until the box is ticked; Escape does not dismiss it either.
  assert.equal(await page.isDisabled('#reveal-close'), true);
  await page.keyboard.press('Escape');
  await page.waitForTimeout(200);
  assert.equal(await reveal.count(), 1, 'Escape does not close an unacknowledged reveal');
  await clickAsPerson(page, '#reveal-close', { force: true }).catch(() => {});
  assert.equal(await reveal.count(), 1, 'clicking the disabled Close does nothing');

  // Copy puts the key on the clipboard.
  await page.evaluate(() => navigator.clipboard.writeText('something else'));
  await clickAsPerson(page, '[data-copy-target=revealed-key]');
  await eventually(async () => (await page.textContent('[data-copy-target=revealed-key]')).trim() === 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key, 'the clipboard holds the key');

  // Ticking enables Close; unticking disables it again.
  await page.check('#key-saved');
  assert.equal(await page.isDisabled('#reveal-close'), false);
  await page.uncheck('#key-saved');
  assert.equal(await page.isDisabled('#reveal-close'), true);
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await reveal.waitFor({ state: 'detached' });

  // Back in the keys dialog: the new row, obfuscated; the key is nowhere in the page.
  const keyRow = keysDialog.locator(`tr#key-${keyId}`);
  await keyRow.waitFor();
  const shown = (await keyRow.locator('.key-code').textContent()).trim();
  assert.equal(shown, `lk_${keyId}…${key.slice(-4)}`);
  assert.match(await keysDialog.locator('.keys-count').textContent(), /1\s*of\s*10 keys/);
  await assertKeyAbsent(page, key);

  // Not after a reload of the Channels page, nor on the keys page, nor in its HTML.
  await page.reload();
  await assertKeyAbsent(page, key);
  await page.goto(`/channels`);
  await page.locator('#channels-table tr', { hasText: 'Payments' }).locator('td[data-label=Keys]', { hasText: '1' }).waitFor();
  const keysHref = await page.locator('#channels-table tr', { hasText: 'Payments' }).locator('text=API Keys').getAttribute('href');
  await page.goto(keysHref);
  await page.locator(`tr#key-${keyId}`).waitFor();
  await assertKeyAbsent(page, key);
  const raw = await (await page.request.get(keysHref)).text();
  assert.ok(raw.includes(keyId), 'the key id is public and listed');
  assert.ok(!raw.includes(key), 'the full key is not in the keys page HTML');
  assert.ok(!raw.includes(key.slice(16, 60)), 'not even the secret part');
  // Going back in history does not bring the reveal back.
  await page.goBack();
  await page.goBack();
  await assertKeyAbsent(page, key);
});

async function assertKeyAbsent(page, key) {
  const secret = key.slice(16, 60);
  const html = await page.content();
  assert.ok(!html.includes(secret), `the key's secret is in the page HTML of ${page.url()}`);
  const inInputs = await page.evaluate((secret) => [...document.querySelectorAll('input, textarea')].some((i) => i.value.includes(secret)), secret);
  assert.equal(inInputs, false, 'no field holds the key');
  const text = await page.evaluate(() => document.body.innerText);
  assert.ok(!text.includes(secret), 'the key is not visible text');
}
