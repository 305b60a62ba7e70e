// Issue 5, item 14: pictures of the main screens in target/screenshots/, for people to
// look at. Each picture is taken in a state the test first checks, and nothing on it
// may stick out of the screen sideways.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, clickAsPerson, eventually } from '../lib/browser.mjs';
import { createChannel, createKeys, csrfPost } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const KEYS = [
  ['checkout-web', 'Checkout on the web shop', ['keys:read', 'verify']],
  ['checkout-ios', 'iOS app, release builds', ['verify']],
  ['checkout-android', '', ['verify']],
  ['refund-worker', 'Nightly refunds batch job; rotates every quarter', ['keys:read', 'keys:write']],
  ['ledger-export', '', ['keys:read']],
  ['fraud-scoring', 'Calls verification for every payment', ['verify']],
  ['partner-acme', 'ACME Corp. integration (contract #4411)', ['keys:read']],
  ['staging-smoke-tests', '', ['keys:read', 'keys:write', 'verify']],
];

/** Nothing wider than the viewport: no sideways scrolling of the page. */
async function assertNoHorizontalOverflow(page, label) {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width, `${label}: the page is ${scroll}px wide in a ${width}px window`);
}

async function seed(page) {
  const payments = await createChannel(page, 'Payments', 25);
  await createChannel(page, 'Mobile apps');
  const partner = await createChannel(page, 'Partner API', 2);
  const made = [];
  for (const [name, description, scopes] of KEYS) {
    const extra = name === 'partner-acme' ? [['cidr', '203.0.113.0/24'], ['expires_at', '2031-01-31T12:00']] : [];
    made.push(await createKeys(page, payments, [name], { description, scopes, extra }).then((x) => x[0]));
  }
  await csrfPost(page, `/keys/${made[4].keyId}/deactivate`, []);
  await createKeys(page, partner, ['acme-prod', 'acme-sandbox']);
  // The plain-form deactivation left a one-time message for the next keys page: take it.
  await page.goto(`/channels/${payments}/keys`);
  await clickAsPerson(page, page.locator('[data-dismiss-toast]'));
  return { payments, partner, made };
}

browserTest('screenshots of the main screens', { baseURL: () => server.url, timeout: 120000, permissions: ['clipboard-read', 'clipboard-write'] }, async (s) => {
  const { page } = s;
  await page.goto('/login');
  await s.shot('01-login');

  await s.login();
  const { payments, partner, made } = await seed(page);
  await page.goto('/channels');
  await page.locator(`#channel-${payments}`).waitFor();
  await s.shot('02-channels');

  await page.goto(`/channels/${payments}/keys`);
  await page.locator('#keys-results tbody tr').nth(KEYS.length - 1).waitFor();
  await assertNoHorizontalOverflow(page, 'keys page at 1280px');
  await s.shot('03-keys-table', { fullPage: true });
  // The description tooltip, hovered.
  await page.locator(`tr#key-${made[0].keyId} .tip`).hover();
  await s.shot('04-keys-description-tooltip');
  await page.mouse.move(0, 0);

  // The keys dialog over the Channels page.
  await page.goto('/channels');
  await clickAsPerson(page, `#channel-${payments} >> text=API Keys`);
  await page.locator('dialog.modal-wide[open] #keys-results tbody tr').first().waitFor();
  await s.shot('05-keys-dialog');

  // Generate modal, stacked, with field errors, then the reveal.
  await clickAsPerson(page, 'dialog.modal-wide #keys-stats >> text=+ Generate API Key');
  const modal = page.locator('#modal-stack dialog[open]');
  await modal.locator('#key-form').waitFor();
  await page.fill('#key-name', 'reporting-dashboard');
  await page.fill('#key-description', 'Read-only access for the BI dashboard');
  await modal.locator('input[name=scopes][value="keys:read"]').check();
  await clickAsPerson(page, modal.locator('button[name=add_cidr]'));
  await page.locator('#cidr-0').waitFor();
  await page.fill('#cidr-0', '198.51.100.0/24');
  await s.shot('06-generate-modal');
  await page.fill('#key-postback', 'not a url');
  await clickAsPerson(page, modal.locator('button[name=save]'));
  await page.locator('#key-postback-error').waitFor();
  await page.locator('#key-postback').scrollIntoViewIfNeeded();
  await s.shot('07-generate-modal-errors');
  await page.fill('#key-postback', '');
  await clickAsPerson(page, modal.locator('button[name=save]'));
  await modal.locator('#revealed-key').waitFor();
  await clickAsPerson(page, '[data-copy-target=revealed-key]');
  await eventually(async () => (await page.textContent('[data-copy-target=revealed-key]')).trim() === 'Copied');
  await s.shot('08-reveal-modal');
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await modal.waitFor({ state: 'detached' });

  // A success toast over the keys dialog.
  await clickAsPerson(page, `dialog.modal-wide tr#key-${made[1].keyId} >> text=Deactivate`);
  await modal.locator('form.confirm').waitFor();
  await s.shot('09-confirm-deactivate');
  await clickAsPerson(page, modal.locator('button[type=submit]'));
  await page.locator('.toast-success').waitFor();
  await s.shot('10-toast-over-dialog');
  await page.keyboard.press('Escape');

  // The delete confirmation on the page, from the menu of the last row (the menu must
  // not be cut off by the table's scroll box).
  await page.goto(`/channels/${payments}/keys`);
  // A person scrolls the row into view, then opens its menu: what they click must be
  // on top where they click it (no scrolling inside the table to reach it).
  await page.locator(`tr#key-${made[0].keyId}`).scrollIntoViewIfNeeded();
  await clickAsPerson(page, `tr#key-${made[0].keyId} details.menu summary`);
  await s.shot('11-row-menu');
  await clickAsPerson(page, `tr#key-${made[0].keyId} .menu-items >> text=Delete`);
  await modal.locator('form.confirm').waitFor();
  assert.match(await modal.textContent(), /cannot be undone/);
  await s.shot('12-confirm-delete');
  await page.keyboard.press('Escape');

  // The channel at its limit: the disabled button explains itself on hover.
  await page.goto(`/channels/${partner}/keys`);
  await page.locator('#keys-stats .tooltip-host').hover();
  await eventually(async () => (await page.locator('#keys-stats .tooltip').evaluate((e) => getComputedStyle(e).opacity)) === '1');
  await s.shot('13-limit-reached');

  // A phone, 375px wide.
  await page.setViewportSize({ width: 375, height: 812 });
  await page.goto(`/channels/${payments}/keys`);
  await page.locator('#keys-results tbody tr').first().waitFor();
  await assertNoHorizontalOverflow(page, 'keys page at 375px');
  await s.shot('14-keys-phone-375', { fullPage: true });
  await s.axe('the keys page at 375px');
  await s.shot('15-keys-phone-375-top');
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  await modal.locator('#key-form').waitFor();
  await s.shot('16-generate-phone-375');
  await page.fill('#key-name', 'phone-key');
  await clickAsPerson(page, modal.locator('button[name=save]'));
  await modal.locator('#revealed-key').waitFor();
  await s.shot('17-reveal-phone-375');
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await page.goto('/channels');
  await assertNoHorizontalOverflow(page, 'channels page at 375px');
  await s.shot('18-channels-phone-375', { fullPage: true });
  await s.axe('the channels page at 375px');
  await clickAsPerson(page, `#channel-${payments} >> text=API Keys`);
  await page.locator('dialog.modal-wide[open] #keys-results tbody tr').first().waitFor();
  await s.shot('19-keys-dialog-phone-375');
  await page.keyboard.press('Escape');
  await page.goto('/login');

  // A wide desktop, 1440px.
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`/channels/${payments}/keys`);
  await page.locator('#keys-results tbody tr').first().waitFor();
  await assertNoHorizontalOverflow(page, 'keys page at 1440px');
  await s.shot('20-keys-1440', { fullPage: true });
  await page.goto('/channels');
  await s.shot('21-channels-1440');
});
