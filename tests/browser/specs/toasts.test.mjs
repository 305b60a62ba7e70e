// Issue 15: notifications piled up over the dialog's primary button, the row buttons
// and Next during quick work. Now: at most three at once, a newer one about a key
// replaces the older one about it, and they stay clear of what a person clicks next.
// Every click is a person's click (clickAsPerson: in the viewport, not covered).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { browserTest, clickAsPerson, eventually } from '../lib/browser.mjs';
import { createChannel, createKeys } from '../lib/app.mjs';
import { startServer } from '../lib/server.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });
const opts = { baseURL: () => server.url };

const dialog = (page) => page.locator('#modal-stack dialog[open]');

/** Rectangles of the toasts that overlap the open dialog's action row. */
async function toastsOverActions(page) {
  return page.evaluate(() => {
    const row = document.querySelector('#modal-stack dialog[open] .form-actions');
    if (!row) return [];
    const r = row.getBoundingClientRect();
    return [...document.querySelectorAll('[data-toast]')]
      .map((t) => t.getBoundingClientRect())
      .filter((b) => !(b.right <= r.left || b.left >= r.right || b.bottom <= r.top || b.top >= r.bottom))
      .map((b) => `${b.left},${b.top} ${b.width}x${b.height}`);
  });
}

async function toggle(page, key, name, verb) {
  await clickAsPerson(page, `tr#key-${key.keyId} .status-cell a[aria-label="${verb} ${name}"]`);
  await dialog(page).waitFor();
  assert.deepEqual(await toastsOverActions(page), [], 'no toast covers the modal action row');
  await clickAsPerson(page, '#modal-stack dialog[open] button[type=submit]');
  await dialog(page).waitFor({ state: 'detached' });
}

browserTest('during quick work toasts stay clear of the modal buttons, the row buttons and Next, three at most', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Quick work', 30);
  const names = Array.from({ length: 12 }, (_, i) => `quick-${String(i).padStart(2, '0')}`);
  const keys = await createKeys(page, channel, names);
  await page.goto(`/channels/${channel}/keys?size=10&sort=name`);

  // Five deactivations in a row, as fast as a person clicks.
  for (let i = 0; i < 5; i++) {
    await toggle(page, keys[i], names[i], 'Deactivate');
    await eventually(async () => (await page.locator(`tr#key-${keys[i].keyId}`).getAttribute('data-status')) === 'inactive');
  }
  await eventually(async () => (await page.locator('[data-toast]').count()) === 3);
  const texts = await page.locator('[data-toast] .toast-message').allTextContents();
  assert.deepEqual(texts, ['“quick-02” deactivated.', '“quick-03” deactivated.', '“quick-04” deactivated.'], 'the newest three');
  await s.shot('toasts-three-at-most');
  // With three toasts up, the row buttons and Next are still a person's to click.
  await page.locator(`tr#key-${keys[9].keyId}`).scrollIntoViewIfNeeded(); // a person scrolls
  await clickAsPerson(page, `tr#key-${keys[9].keyId} .status-cell a`);
  await dialog(page).waitFor();
  assert.deepEqual(await toastsOverActions(page), []);
  await page.keyboard.press('Escape');
  await dialog(page).waitFor({ state: 'detached' });
  await clickAsPerson(page, `tr#key-${keys[0].keyId} details.menu summary`);
  await page.keyboard.press('Escape');
  await page.locator('a[rel=next]').scrollIntoViewIfNeeded(); // a person scrolls the page
  await clickAsPerson(page, 'a[rel=next]');
  await eventually(async () => (await page.locator('.page-range').textContent()) === '11–12 of 12');
});

browserTest('a newer toast about a key replaces the older one about it', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Same key', 10);
  const [one, two] = await createKeys(page, channel, ['flip', 'other']);
  await page.goto(`/channels/${channel}/keys`);
  await toggle(page, two, 'other', 'Deactivate');
  await toggle(page, one, 'flip', 'Deactivate');
  await toggle(page, one, 'flip', 'Activate');
  await eventually(async () => (await page.locator(`[data-toast][data-key="${one.keyId}"]`).count()) === 1);
  assert.equal(await page.locator(`[data-toast][data-key="${one.keyId}"] .toast-message`).textContent(), '“flip” activated.');
  assert.equal(await page.locator('[data-toast]').count(), 2, 'the toast about the other key stays');
});
