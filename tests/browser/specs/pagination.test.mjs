// Issue 5, item 4: page forward and back, with the buttons disabled at the ends.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const TOTAL = 45;
const pad = (n) => String(n).padStart(2, '0');

async function pageState(page) {
  return page.evaluate(() => {
    const nav = document.querySelector('#keys-results .pagination');
    const prevLink = nav.querySelector('a[rel=prev]');
    const nextLink = nav.querySelector('a[rel=next]');
    const buttons = [...nav.querySelectorAll('button[disabled]')].map((b) => b.textContent.trim());
    return {
      range: nav.querySelector('.page-range').textContent.trim(),
      prev: prevLink ? 'link' : (buttons.includes('← Previous') ? 'disabled' : 'missing'),
      next: nextLink ? 'link' : (buttons.includes('Next →') ? 'disabled' : 'missing'),
      names: [...document.querySelectorAll('#keys-results tbody tr .name-cell .cell-strong')].map((e) => e.textContent.trim()),
    };
  });
}

async function expectPage(page, range, prev, next) {
  return eventually(async () => {
    const st = await pageState(page);
    assert.deepEqual({ range: st.range, prev: st.prev, next: st.next }, { range, prev, next });
    return st;
  });
}

browserTest('Previous and Next walk the pages and are disabled at the ends', { baseURL: () => server.url, timeout: 90000 }, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Paging');

  // Raise the channel's limit through its Edit dialog, as an admin would.
  await page.goto('/channels');
  await clickAsPerson(page, `#channel-${channel} >> text=Edit`);
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  assert.equal(await page.inputValue('#channel-limit'), '', 'the channel uses the default limit');
  await page.fill('#channel-limit', '60');
  await clickAsPerson(page, dialog.locator('button[type=submit]'));
  await dialog.waitFor({ state: 'detached' });
  await page.locator(`#channel-${channel} td[data-label=Limit]`, { hasText: '60' }).waitFor();

  // Many keys quickly, through the plain form (several land in the same second, which
  // the keyset pagination must handle without skipping or repeating a row).
  await createKeys(page, channel, Array.from({ length: TOTAL }, (_, i) => `page-key-${pad(i + 1)}`));

  const base = `/channels/${channel}/keys`;
  await page.goto(base);
  const seen = [];
  let st = await expectPage(page, `1–20 of ${TOTAL}`, 'disabled', 'link');
  assert.equal(st.names.length, 20);
  assert.equal(st.names[0], `page-key-${TOTAL}`, 'newest first');
  seen.push(...st.names);
  assert.equal(await page.isDisabled('#keys-results button:has-text("← Previous")'), true);

  await clickAsPerson(page, '#keys-results a[rel=next]');
  st = await expectPage(page, `21–40 of ${TOTAL}`, 'link', 'link');
  seen.push(...st.names);
  const page2Url = page.url();
  assert.notEqual(new URL(page2Url).search, '', 'the page is in the address');

  await clickAsPerson(page, '#keys-results a[rel=next]');
  st = await expectPage(page, `41–45 of ${TOTAL}`, 'link', 'disabled');
  assert.equal(st.names.length, 5);
  seen.push(...st.names);
  assert.equal(await page.isDisabled('#keys-results button:has-text("Next →")'), true);

  // Every key exactly once, in order.
  const expected = Array.from({ length: TOTAL }, (_, i) => `page-key-${pad(TOTAL - i)}`);
  assert.deepEqual(seen, expected);

  // And back again.
  await clickAsPerson(page, '#keys-results a[rel=prev]');
  st = await expectPage(page, `21–40 of ${TOTAL}`, 'link', 'link');
  assert.deepEqual(st.names, expected.slice(20, 40));
  await clickAsPerson(page, '#keys-results a[rel=prev]');
  st = await expectPage(page, `1–20 of ${TOTAL}`, 'disabled', 'link');
  assert.deepEqual(st.names, expected.slice(0, 20));

  // The browser's Back button walks the same way, and a reload keeps the page.
  await page.goBack();
  st = await expectPage(page, `21–40 of ${TOTAL}`, 'link', 'link');
  await page.goto(page2Url);
  st = await expectPage(page, `21–40 of ${TOTAL}`, 'link', 'link');
  assert.deepEqual(st.names, expected.slice(20, 40));

  // A larger page size shows everything, with both buttons disabled.
  await page.selectOption('#page-size', '50');
  st = await expectPage(page, `1–${TOTAL} of ${TOTAL}`, 'disabled', 'disabled');
  assert.equal(st.names.length, TOTAL);
  await eventually(() => new URL(page.url()).searchParams.get('size') === '50');
  assert.equal(await page.inputValue('#page-size'), '50');

  // A small page size with a filter pages through the matches only.
  await page.selectOption('#page-size', '10');
  await expectPage(page, `1–10 of ${TOTAL}`, 'disabled', 'link');
  await page.fill('#key-filter', '1');
  // 41, 31, 21, 19..10 and 01 match: 14 keys, newest first.
  st = await expectPage(page, '1–10 of 14', 'disabled', 'link');
  assert.deepEqual(st.names.slice(0, 4), ['page-key-41', 'page-key-31', 'page-key-21', 'page-key-19']);
  await clickAsPerson(page, '#keys-results a[rel=next]');
  st = await expectPage(page, '11–14 of 14', 'link', 'disabled');
  assert.deepEqual(st.names, ['page-key-12', 'page-key-11', 'page-key-10', 'page-key-01']);
  assert.equal(new URL(page.url()).searchParams.get('q'), '1', 'paging keeps the filter');

  // Sorting by name (a column header) starts again at the first page.
  await page.fill('#key-filter', '');
  await expectPage(page, `1–10 of ${TOTAL}`, 'disabled', 'link');
  await clickAsPerson(page, '#keys-results th a.sort-link:has-text("Name")');
  st = await eventually(async () => {
    const x = await pageState(page);
    assert.equal(x.names[0], 'page-key-01');
    return x;
  });
  assert.deepEqual(st.names, expected.slice().reverse().slice(0, 10));
  assert.equal(st.prev, 'disabled');

  // Filtering keeps the chosen sort and page size.
  await page.fill('#key-filter', '4');
  st = await expectPage(page, '1–10 of 10', 'disabled', 'disabled');
  assert.deepEqual(st.names, ['page-key-04', 'page-key-14', 'page-key-24', 'page-key-34', 'page-key-40', 'page-key-41', 'page-key-42', 'page-key-43', 'page-key-44', 'page-key-45']);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('sort'), 'name');
  assert.equal(url.searchParams.get('size'), '10');
});
