// Issue 5, items 9 and 10: the limit reached disables the create button and says why;
// a support user sees no create or edit controls (and the server refuses them anyway).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, USER_PASSWORD } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys, csrfPost } from '../lib/app.mjs';

let server;
before(async () => {
  server = await startServer();
  await server.createUser('sam', 'support');
  await server.createUser('olga', 'operator');
});
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url };
const REASON = 'This channel has reached its limit of 2 keys. Delete a key, or ask an admin to raise the limit.';

browserTest('at the limit the create button is disabled and says why; deleting a key enables it again', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Small', 2);
  const [first] = await createKeys(page, channel, ['first', 'second']);

  await page.goto(`/channels/${channel}/keys`);
  const stats = page.locator('#keys-stats');
  assert.match(await stats.locator('.keys-count').textContent(), /2\s*of\s*2 keys\s*limit reached/);
  const button = stats.locator('button', { hasText: '+ Generate API Key' });
  assert.equal(await button.isDisabled(), true, 'the create button is disabled');
  assert.equal(await stats.locator('a', { hasText: 'Generate' }).count(), 0, 'and there is no live link');
  // The reason is tied to the button for assistive technology and shows on hover.
  const tipId = await button.getAttribute('aria-describedby');
  const tip = page.locator(`#${tipId}`);
  assert.equal((await tip.textContent()).trim(), REASON);
  assert.equal(await tip.getAttribute('role'), 'tooltip');
  assert.equal(await tip.evaluate((el) => getComputedStyle(el).opacity), '0', 'hidden until hovered');
  await stats.locator('.tooltip-host').hover();
  await eventually(async () => (await tip.evaluate((el) => getComputedStyle(el).opacity)) === '1');
  assert.ok(await tip.isVisible());
  const box = await tip.boundingBox();
  const vp = page.viewportSize();
  assert.ok(box.x >= 0 && box.x + box.width <= vp.width, 'the tooltip fits on the screen');
  // Keyboard users reach the button too (a natively disabled one leaves the Tab order)
  // and the reason shows on focus; Enter does nothing.
  await page.mouse.move(0, 0);
  await eventually(async () => (await tip.evaluate((el) => getComputedStyle(el).opacity)) === '0');
  await page.locator('#key-filter').focus();
  let reached = false;
  for (let i = 0; i < 15 && !reached; i++) {
    await page.keyboard.press('Shift+Tab');
    reached = await button.evaluate((el) => el === document.activeElement);
  }
  assert.ok(reached, 'Shift+Tab from the filter reaches the create button');
  await eventually(async () => (await tip.evaluate((el) => getComputedStyle(el).opacity)) === '1');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#modal-stack dialog').count(), 0, 'Enter opens nothing');

  // The server refuses a create past the limit, whatever the page shows.
  const res = await csrfPost(page, `/channels/${channel}/keys`, [['name', 'third'], ['enabled', 'on'], ['save', '1']]);
  assert.equal(res.status(), 422);
  assert.match(await res.text(), /reached its limit of 2 keys/);
  const form = await page.request.get(`/channels/${channel}/keys/new`, { maxRedirects: 0 });
  assert.equal(form.status(), 409);

  // Same in the keys dialog over the Channels page; delete one and the button comes back.
  await page.goto('/channels');
  await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
  const dialog = page.locator('dialog.modal-wide[open]');
  await dialog.waitFor();
  assert.equal(await dialog.locator('#keys-stats button:has-text("+ Generate API Key")').isDisabled(), true);
  await clickAsPerson(page, dialog.locator(`tr#key-${first.keyId} details.menu summary`));
  await clickAsPerson(page, dialog.locator(`tr#key-${first.keyId} .menu-items a`, { hasText: 'Delete' }));
  await clickAsPerson(page, page.locator('#modal-stack dialog[open] button[type=submit]'));
  await page.locator('#modal-stack dialog[open]').waitFor({ state: 'detached' });
  const link = dialog.locator('#keys-stats a', { hasText: '+ Generate API Key' });
  await link.waitFor();
  assert.match(await dialog.locator('.keys-count').textContent(), /1\s*of\s*2 keys/);
  assert.doesNotMatch(await dialog.locator('.keys-count').textContent(), /limit reached/);
  await clickAsPerson(page, link);
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();
});

browserTest('a support user sees keys but no create or edit controls, and the server refuses them', opts, async (s) => {
  const { page, context } = s;
  // An admin sets the scene.
  await s.login();
  const channel = await createChannel(page, 'Supported');
  const [k1, k2] = await createKeys(page, channel, ['support-one', 'support-two'], { description: 'has a description' });
  await context.clearCookies();

  await s.login('sam', USER_PASSWORD);
  assert.equal((await page.textContent('.badge-role')).trim(), 'support');
  assert.equal(await page.locator('text=+ New channel').count(), 0, 'no New channel button');
  assert.equal(await page.locator('#channels-table a', { hasText: /^Edit$/ }).count(), 0, 'no channel Edit buttons');
  assert.equal(await page.locator(`#channel-${channel} a`, { hasText: 'API Keys' }).count(), 1);

  for (const where of ['page', 'dialog']) {
    let scope;
    if (where === 'page') {
      await page.goto(`/channels/${channel}/keys`);
      scope = page.locator('#keys-view');
    } else {
      await page.goto('/channels');
      await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
      scope = page.locator('dialog.modal-wide[open]');
      await scope.waitFor();
    }
    await scope.locator(`tr#key-${k1.keyId}`).waitFor();
    assert.equal(await scope.locator('text=Generate API Key').count(), 0, `no Generate button (${where})`);
    assert.equal(await scope.locator('a[title=Edit]').count(), 0, `no edit pencil (${where})`);
    assert.equal(await scope.locator('.menu-items a', { hasText: 'Rename' }).count(), 0, `no Rename (${where})`);
    // What support may do is there: see metadata, deactivate, delete.
    assert.equal(await scope.locator('a', { hasText: 'Deactivate' }).count(), 2);
    assert.equal(await scope.locator('.menu-items a', { hasText: 'Delete' }).count(), 2);
    assert.equal(await scope.locator(`tr#key-${k1.keyId} .tip`).getAttribute('data-tip'), 'has a description');
  }

  // Support revokes: deactivate (no way back to active for them) and delete.
  await page.goto(`/channels/${channel}/keys`);
  const row = page.locator(`tr#key-${k1.keyId}`);
  await clickAsPerson(page, row.locator('text=Deactivate'));
  await clickAsPerson(page, page.locator('#modal-stack dialog[open] button[type=submit]'));
  await eventually(async () => (await row.locator('.status-cell .badge').textContent()).trim() === 'Inactive');
  assert.equal(await row.locator('text=Activate').count(), 0, 'support cannot activate');

  // The server enforces it: forged requests with a valid CSRF token are refused.
  // (Chromium logs the 403 answers of these requests.)
  s.allow(/status of 403/);
  const create = await csrfPost(page, `/channels/${channel}/keys`, [['name', 'sneaky'], ['enabled', 'on'], ['save', '1']]);
  assert.equal(create.status(), 403);
  const rename = await csrfPost(page, `/keys/${k2.keyId}/rename`, [['name', 'renamed']]);
  assert.equal(rename.status(), 403);
  const edit = await csrfPost(page, `/keys/${k2.keyId}`, [['name', 'edited'], ['enabled', 'on'], ['save', '1']]);
  assert.equal(edit.status(), 403);
  const activate = await csrfPost(page, `/keys/${k1.keyId}/activate`, []);
  assert.equal(activate.status(), 403);
  // Opening the create form by its address shows an error page, not the form.
  await page.goto(`/channels/${channel}/keys/new`);
  assert.equal(await page.locator('#key-form').count(), 0);
  assert.match(await page.textContent('main'), /You do not have permission to do that\./);
  await page.goto(`/channels/${channel}/keys`);
  assert.equal((await page.locator(`tr#key-${k2.keyId} .name-cell .cell-strong`).textContent()).trim(), 'support-two');
});

browserTest('an operator creates and edits keys but does not manage channels', opts, async (s) => {
  const { page, context } = s;
  await s.login();
  const channel = await createChannel(page, 'Operated');
  await context.clearCookies();

  await s.login('olga', USER_PASSWORD);
  assert.equal(await page.locator('text=+ New channel').count(), 0);
  assert.equal(await page.locator('#channels-table a', { hasText: /^Edit$/ }).count(), 0);
  await page.goto(`/channels/${channel}/keys`);
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  await page.fill('#key-name', 'operator-key');
  await clickAsPerson(page, '#key-form button[name=save]');
  await page.locator('#revealed-key').waitFor();
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  const row = page.locator('#keys-results tr', { hasText: 'operator-key' });
  await row.waitFor();
  assert.match(await row.textContent(), /by olga/);
  assert.equal(await row.locator('a[title=Edit]').count(), 1);
});
