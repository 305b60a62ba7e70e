// Issue 5, item 3: filter as you type, and the URL keeps the filter (reload keeps it,
// Back restores the previous filter).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const NAMES = ['alpha-web', 'alpha-mobile', 'beta-billing', 'gamma-reports'];

async function rowNames(page) {
  return (await page.locator('#keys-results tbody tr .name-cell .cell-strong').allTextContents()).map((s) => s.trim()).sort();
}

async function waitForRows(page, expected) {
  await eventually(async () => {
    assert.deepEqual(await rowNames(page), [...expected].sort());
  });
}

browserTest('typing filters the table, and the address keeps the filter through reload and Back', { baseURL: () => server.url }, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Filtering');
  await createKeys(page, channel, NAMES);
  const base = `/channels/${channel}/keys`;
  await page.goto(base);
  await waitForRows(page, NAMES);

  // Typing, without pressing Enter: the table follows, after a short pause, with one
  // request rather than one per key stroke.
  const requests = [];
  page.on('request', (r) => { if (r.headers()['hx-request'] && r.url().includes(base)) requests.push(r.url()); });
  await clickAsPerson(page, '#key-filter');
  await page.keyboard.type('alpha', { delay: 40 });
  await waitForRows(page, ['alpha-web', 'alpha-mobile']);
  await eventually(() => new URL(page.url()).searchParams.get('q') === 'alpha');
  assert.ok(requests.length >= 1 && requests.length < 'alpha'.length, `typing is debounced (${requests.length} requests for 5 key strokes)`);
  assert.match(await page.textContent('.page-range'), /1–2 of 2/);
  assert.equal(await page.inputValue('#key-filter'), 'alpha', 'the swap leaves what was typed alone');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'key-filter', 'focus stays in the filter box');

  // Reload keeps it.
  await page.reload();
  assert.equal(await page.inputValue('#key-filter'), 'alpha');
  await waitForRows(page, ['alpha-web', 'alpha-mobile']);

  // A second filter, then Back restores the first, and Back again the unfiltered list.
  await page.fill('#key-filter', '');
  await clickAsPerson(page, '#key-filter');
  await page.keyboard.type('bill', { delay: 40 });
  await waitForRows(page, ['beta-billing']);
  await eventually(() => new URL(page.url()).searchParams.get('q') === 'bill');

  await page.goBack();
  await eventually(() => new URL(page.url()).searchParams.get('q') === 'alpha');
  await waitForRows(page, ['alpha-web', 'alpha-mobile']);
  assert.equal(await page.inputValue('#key-filter'), 'alpha', 'Back restores the filter text too');

  // Going back past the first filter restores the whole table (the intermediate
  // empty-filter entry, from clearing the box, may or may not be in the history).
  for (let i = 0; i < 3 && new URL(page.url()).search !== ''; i++) {
    await page.goBack();
    await page.waitForLoadState();
  }
  await eventually(() => new URL(page.url()).pathname === base && !new URL(page.url()).searchParams.get('q'));
  await waitForRows(page, NAMES);
  assert.equal(await page.inputValue('#key-filter'), '');

  // Forward again: the box and the rows follow the address (htmx reloads the page).
  await page.goForward();
  await eventually(async () => {
    const q = new URL(page.url()).searchParams.get('q');
    assert.ok(q, 'the address has a filter again');
    assert.equal(await page.inputValue('#key-filter'), q, 'Forward shows the filter of its address');
  });
});

browserTest('no match says so and offers to clear; pasting a key or key id finds that key', { baseURL: () => server.url }, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Pasting');
  const [web, mobile] = await createKeys(page, channel, ['paste-web', 'paste-mobile', 'paste-cli']);
  const base = `/channels/${channel}/keys`;
  await page.goto(base);
  await waitForRows(page, ['paste-web', 'paste-mobile', 'paste-cli']);

  await page.fill('#key-filter', 'zzz-nothing');
  await page.locator('.empty-state', { hasText: 'No keys match “zzz-nothing”' }).waitFor();
  await eventually(() => new URL(page.url()).searchParams.get('q') === 'zzz-nothing');
  await clickAsPerson(page, 'text=Clear the filter');
  await waitForRows(page, ['paste-web', 'paste-mobile', 'paste-cli']);
  await eventually(() => !new URL(page.url()).searchParams.get('q'));

  // A pasted key id.
  await page.fill('#key-filter', mobile.keyId);
  await waitForRows(page, ['paste-mobile']);

  // A pasted full key: found, and the address shows its key id, never the secret;
  // no request the page makes carries the key in its URL (proxies log URLs).
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  await page.fill('#key-filter', web.plain);
  await waitForRows(page, ['paste-web']);
  await eventually(() => new URL(page.url()).searchParams.get('q') === web.keyId);
  assert.ok(!page.url().includes(web.plain.slice(16)), 'the secret never reaches the address bar');
  assert.ok(urls.length > 0, 'the filter asked the server');
  assert.deepEqual(urls.filter((u) => u.includes(web.plain.slice(16))), [], 'no request URL carries the key');

  // The filter also works inside the keys dialog over the Channels page, and its
  // address can be reloaded as the full page with the filter.
  await page.goto('/channels');
  await clickAsPerson(page, page.locator(`#channel-${channel} >> text=API Keys`));
  const dialog = page.locator('dialog.modal-wide[open]');
  await dialog.waitFor();
  await clickAsPerson(page, dialog.locator('#key-filter'));
  await page.keyboard.type('cli', { delay: 30 });
  await waitForRows(page, ['paste-cli']);
  await eventually(() => new URL(page.url()).searchParams.get('q') === 'cli');
  await page.reload();
  assert.equal(await page.locator('dialog[open]').count(), 0, 'the reload is the full page');
  assert.equal(await page.inputValue('#key-filter'), 'cli');
  await waitForRows(page, ['paste-cli']);
});
