// Issue 11: two-factor authentication. A person enrols by scanning the QR code (here:
// reading the secret shown beside it), confirms with a code, sees ten recovery codes
// once, and from then on logs in with the password and then a code. The codes are
// computed here with Node's own HMAC-SHA1 (RFC 6238), as an authenticator app would.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, ADMIN_PASSWORD } from '../lib/server.mjs';
import { browserTest, checkAxe, shot, clickAsPerson } from '../lib/browser.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/\s+/g, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP: HMAC-SHA1, 30-second steps, six digits. */
function totp(secret, unixSeconds = Date.now() / 1000) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

/** Clicks what a person can see: fails if it is hidden, covered or zero-sized. */
async function clickVisible(locator) {
  assert.ok(await locator.isVisible(), 'the element is visible');
  const box = await locator.boundingBox();
  assert.ok(box && box.width > 0 && box.height > 0, 'the element has a size');
  await clickAsPerson(locator.page(), locator);
}

browserTest('a person enrols with the QR code page and then logs in with a code', { baseURL: () => server.url }, async (s) => {
  const { page } = s;
  // A wrong code is answered 422 (enrolment) and 401 (login step); Chromium logs both.
  s.allow(/status of 401/);
  const user = await server.createUser('tess', 'operator');
  await s.login(user.username, user.password);

  await Promise.all([page.waitForURL(/\/account\/two-factor$/), clickVisible(page.locator('a:has-text("Two-factor")'))]);
  assert.equal((await page.textContent('h1')).trim(), 'Two-factor authentication');
  const qr = page.locator('#totp-qr');
  assert.ok(await qr.isVisible(), 'the QR code is shown');
  const box = await qr.boundingBox();
  assert.ok(box.width >= 150 && box.height >= 150, `a scannable size: ${JSON.stringify(box)}`);
  const secret = (await page.textContent('#totp-secret')).trim();
  assert.match(secret, /^[A-Z2-7 ]{32,}$/);
  await checkAxe(page, 'two-factor enrolment');
  await shot(page, 'two-factor-enrolment', { fullPage: true });

  // A wrong code first: the message sits next to the field.
  await page.fill('#totp-code', '000000');
  await clickVisible(page.locator('button:has-text("Turn on two-factor")'));
  await page.locator('#totp-code-error').waitFor();
  assert.equal(await page.getAttribute('#totp-code', 'aria-invalid'), 'true');

  await page.fill('#totp-code', totp(secret));
  await clickVisible(page.locator('button:has-text("Turn on two-factor")'));
  await page.locator('#recovery-codes').waitFor();
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  await checkAxe(page, 'recovery codes');
  await shot(page, 'two-factor-recovery-codes', { fullPage: true });
  await Promise.all([page.waitForURL(/\/channels$/), clickVisible(page.locator('a:has-text("Continue")'))]);

  // Log out, and in again: the password, then a code.
  await Promise.all([page.waitForURL(/logged_out/), clickVisible(page.locator('text=Log out'))]);
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await Promise.all([page.waitForURL(/\/login\/code$/), clickVisible(page.locator('form[action="/login"] button[type=submit]'))]);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'code', 'the code field has focus');
  await checkAxe(page, 'login code');

  // Half logged in, the dashboard is still closed.
  await page.goto('/channels');
  assert.match(page.url(), /\/login$/);
  await page.goBack();
  await page.waitForURL(/\/login\/code$/);

  await page.fill('#code', '999999');
  await clickVisible(page.locator('button:has-text("Verify")'));
  await page.locator('#code-error').waitFor();

  // The enrolment used the current time step: the app's next code logs in.
  await page.fill('#code', totp(secret, Date.now() / 1000 + 30));
  await Promise.all([page.waitForURL(/\/channels$/), clickVisible(page.locator('button:has-text("Verify")'))]);
  assert.equal((await page.textContent('.account-name')).trim(), user.username);
});

browserTest('an admin who must use two-factor is sent to enrolment after the password', { baseURL: () => server.url }, async (s) => {
  const { page } = s;
  await s.login('admin', ADMIN_PASSWORD);
  await page.goto('/users');
  await page.selectOption('#two-factor-rule', 'admins');
  // (Already on /users: wait for the post's own navigation, which a mouse click does not.)
  await Promise.all([page.waitForNavigation(), clickVisible(page.locator('section[aria-labelledby="two-factor-title"] button[type=submit]'))]);
  assert.equal(await page.inputValue('#two-factor-rule'), 'admins');
  await Promise.all([page.waitForURL(/logged_out/), clickVisible(page.locator('text=Log out'))]);

  await page.fill('#username', 'admin');
  await page.fill('#password', ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(/\/account\/two-factor$/), clickVisible(page.locator('form[action="/login"] button[type=submit]'))]);
  assert.match(await page.textContent('main'), /required for your account/);
  const secret = (await page.textContent('#totp-secret')).trim();
  await page.fill('#totp-code', totp(secret));
  await clickVisible(page.locator('button:has-text("Turn on two-factor")'));
  await page.locator('#recovery-codes').waitFor();
  await Promise.all([page.waitForURL(/\/channels$/), clickVisible(page.locator('a:has-text("Continue")'))]);
  assert.equal((await page.textContent('h1')).trim(), 'Channels');
});
