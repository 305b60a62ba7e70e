// Issue 5, item 1: log in and out.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, ADMIN_PASSWORD } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = () => ({ baseURL: () => server.url });

browserTest('a wrong password is refused with a message and the username kept', opts(), async (s) => {
  const { page } = s;
  // The login page answers 401 on a failed attempt; Chromium logs that status.
  s.allow(/status of 401/);
  await page.goto('/');
  assert.match(page.url(), /\/login$/, 'the home page sends a stranger to the login page');
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await clickAsPerson(page, 'form[action="/login"] button[type=submit]');
  await page.locator('#login-error').waitFor();
  assert.equal((await page.textContent('#login-error')).trim(), 'Invalid username or password.');
  assert.equal(await page.inputValue('#username'), 'admin');
  assert.equal(await page.inputValue('#password'), '', 'the password is never echoed back');
  assert.equal(await page.getAttribute('#username', 'aria-describedby'), 'login-error');
  // Still no way in.
  await page.goto('/channels');
  assert.match(page.url(), /\/login$/);
});

browserTest('logging in lands on Channels and logging out ends the session', opts(), async (s) => {
  const { page, context } = s;
  await page.goto('/login');
  // The username field has focus on arrival; a person can type straight away.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'username');
  await page.keyboard.type('admin');
  await page.fill('#password', ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(/\/channels$/), page.press('#password', 'Enter')]);
  assert.equal((await page.textContent('h1')).trim(), 'Channels');
  assert.equal((await page.textContent('.account-name')).trim(), 'admin');
  assert.equal(await page.title(), 'Channels · Latchkey');

  // Keep a copy of the logged-in cookie: after logging out it must be worthless.
  const loggedIn = await context.cookies();
  assert.ok(loggedIn.some((c) => c.name === 'latchkey_session'), 'a session cookie is set');
  const cookie = loggedIn.find((c) => c.name === 'latchkey_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');

  await Promise.all([page.waitForURL(/\/login\?logged_out=1$/), clickAsPerson(page, 'text=Log out')]);
  assert.equal((await page.textContent('.alert-info')).trim(), 'You have been logged out.');

  await page.goto('/channels');
  assert.match(page.url(), /\/login$/, 'after logging out the dashboard asks for a login');

  // Going back in history does not bring the dashboard back either.
  await page.goBack();
  await page.reload();
  assert.match(page.url(), /\/login/);

  // Replaying the old cookie does not resurrect the session (the server forgot it).
  await context.clearCookies();
  await context.addCookies(loggedIn);
  await page.goto('/channels');
  assert.match(page.url(), /\/login$/, 'the old session cookie no longer logs in');

  // And logging in again works.
  await page.fill('#username', 'admin');
  await page.fill('#password', ADMIN_PASSWORD);
  await Promise.all([page.waitForURL(/\/channels$/), clickAsPerson(page, 'form[action="/login"] button[type=submit]')]);
  await eventually(async () => (await page.textContent('h1')).trim() === 'Channels');
});

browserTest('a session that ended elsewhere sends the next click to the login page', { baseURL: () => server.url }, async (s) => {
  const { page, context } = s;
  // The htmx request gets 401 with HX-Redirect; Chromium logs the 401.
  s.allow(/status of 401|Response Status Error Code 401/);
  await s.login();
  // Log out in a second tab of the same browser: the first tab still shows Channels.
  const other = await context.newPage();
  await other.goto('/channels');
  await Promise.all([other.waitForURL(/logged_out/), clickAsPerson(other, 'text=Log out')]);
  await other.close();
  await Promise.all([
    page.waitForURL(/\/login$/),
    clickAsPerson(page, '#channels-table a:has-text("API Keys")'),
  ]);
  await page.locator('#username').waitFor();
  assert.equal(await page.locator('dialog[open]').count(), 0);
});
