// Issue 12: the POSTback actions on the key page, clicked by a person. A receiver on
// loopback (allowed on purpose by the test server's LATCHKEY_POSTBACK_ALLOW) gets a
// test event, a resent event and, after a roll, events signed with two secrets.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKey } from '../lib/app.mjs';

let server;
let receiver;
const received = [];

before(async () => {
  server = await startServer({ env: { LATCHKEY_POSTBACK_POLL_MS: '100' } });
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  await server?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function clickVisible(locator) {
  await locator.waitFor({ state: 'visible' });
  assert.ok(await locator.isVisible(), 'the button is visible before it is clicked');
  await clickAsPerson(locator.page(), locator);
}

browserTest('send a test event, resend a delivery and roll the signing secret from the key page', {
  baseURL: () => server.url,
}, async (s) => {
  const { page } = s;
  await s.login();
  const url = `http://127.0.0.1:${receiver.address().port}/hooks/latchkey`;
  const channel = await createChannel(page, 'Hooks');
  const { keyId } = await createKey(page, channel, 'hooked', { extra: [['postback_url', url]] });
  await eventually(async () => received.some((r) => r.body.type === 'key.created' && r.body.data.key_id === keyId));

  await page.goto(`/keys/${keyId}`);
  await page.locator('#deliveries-title').waitFor();
  await clickVisible(page.locator('#send-test-event'));
  await page.locator('text=Test event queued.').waitFor();
  await eventually(async () => received.some((r) => r.body.type === 'key.test'));
  const test = received.find((r) => r.body.type === 'key.test');
  assert.match(test.headers['webhook-id'], /^msg_/);
  assert.match(test.headers['webhook-signature'], /^v1,[A-Za-z0-9+/=]+$/);

  // Resend the oldest delivery (key.created): the same webhook-id arrives again.
  const created = received.find((r) => r.body.type === 'key.created');
  await page.reload();
  const resend = page.locator('.deliveries tr', { hasText: 'key.created' }).locator('button', { hasText: 'Resend' });
  await clickVisible(resend);
  await page.locator('text=Event queued again.').waitFor();
  await eventually(async () => received.filter((r) => r.headers['webhook-id'] === created.headers['webhook-id']).length === 2);

  // Roll the signing secret: shown once, then both signatures for a day.
  await clickVisible(page.locator('#roll-signing-secret'));
  const secret = await page.inputValue('#revealed-secret');
  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  const close = page.locator('#reveal-close');
  await clickVisible(page.locator('#key-saved'));
  await clickVisible(close);
  await page.waitForURL(new RegExp(`/keys/${keyId}`));
  // (A person's click does not wait for what it starts: wait for the dialog to go.)
  await page.locator('#revealed-secret').waitFor({ state: 'detached' });
  assert.ok(!(await page.content()).includes(secret.slice(6)), 'the secret is not shown again');
  await page.locator('text=the previous secret also signs until').waitFor();
  await clickVisible(page.locator('#send-test-event'));
  await eventually(async () => received.filter((r) => r.body.type === 'key.test').length === 2);
  const after = received.filter((r) => r.body.type === 'key.test')[1];
  assert.equal(after.headers['webhook-signature'].split(' ').length, 2, 'signed with the old and the new secret');
});
