// Issue 5, item 12: every page and every modal passes axe-core (no serious or critical
// violations); modals keep Tab inside, close with Escape and give focus back to what
// opened them; the create flow works with the keyboard alone.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../lib/server.mjs';
import { browserTest, eventually, tabTo, describeFocus, clickAsPerson } from '../lib/browser.mjs';
import { createChannel, createKeys, csrfPost } from '../lib/app.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

const opts = { baseURL: () => server.url };

/** Is the focused element inside the dialog on top? */
async function focusInTopDialog(page) {
  return page.evaluate(() => {
    const open = [...document.querySelectorAll('dialog[open]')];
    const top = open[open.length - 1];
    return !!top && top.contains(document.activeElement) && document.activeElement !== top;
  });
}

/** Tabs forward and backward through the open dialog: focus never leaves it. */
async function assertFocusTrapped(page, label) {
  const count = await page.evaluate(() => {
    const open = [...document.querySelectorAll('dialog[open]')];
    const top = open[open.length - 1];
    return top.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]').length;
  });
  const presses = count + 12; // datetime inputs take several Tab stops
  const seen = new Set();
  for (const key of ['Tab', 'Shift+Tab']) {
    for (let i = 0; i < presses; i++) {
      await page.keyboard.press(key);
      const inside = await focusInTopDialog(page);
      if (!inside) assert.fail(`${label}: after ${i + 1}× ${key} focus left the dialog (${await describeFocus(page)})`);
      seen.add(await describeFocus(page));
    }
  }
  assert.ok(seen.size >= 2, `${label}: Tab moves between controls`);
}

/** Escape closes the top dialog and focus returns to `openerSelector`. */
async function assertEscapeReturnsFocus(page, openerSelector, label) {
  const before = await page.locator('dialog[open]').count();
  await page.keyboard.press('Escape');
  await eventually(async () => (await page.locator('dialog[open]').count()) === before - 1);
  await eventually(async () => page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), openerSelector),
    { timeout: 2000 }).catch(async () => assert.fail(`${label}: focus went to ${await describeFocus(page)}, not back to ${openerSelector}`));
}

browserTest('login, channels, keys page, error page and every modal pass axe', { ...opts, timeout: 120000 }, async (s) => {
  const { page } = s;
  s.allow(/status of (401|404)/);
  await page.goto('/login');
  await s.axe('the login page');
  await page.fill('#username', 'admin');
  await page.fill('#password', 'wrong password');
  await clickAsPerson(page, 'form[action="/login"] button[type=submit]');
  await page.locator('#login-error').waitFor();
  await s.axe('the login page with an error');

  await s.login();
  const channel = await createChannel(page, 'Accessible');
  const full = await createChannel(page, 'Full', 1);
  await createKeys(page, full, ['only']);
  const [k1, k2] = await createKeys(page, channel, ['first', 'second', 'third'], { description: 'A described key' });
  await csrfPost(page, `/keys/${k2.keyId}/deactivate`, []);
  await page.goto('/channels');
  await s.axe('the channels page');

  await clickAsPerson(page, 'text=+ New channel');
  await page.locator('dialog[open] #channel-form').waitFor();
  await s.axe('the new channel modal');
  await clickAsPerson(page, 'dialog[open] #channel-form button[type=submit]');
  await page.locator('#channel-name-error').waitFor();
  await s.axe('the new channel modal with an error');
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  await clickAsPerson(page, `#channel-${channel} >> text=Edit`);
  await page.locator('dialog[open] #channel-form').waitFor();
  await s.axe('the edit channel modal');
  await page.keyboard.press('Escape');

  await clickAsPerson(page, `#channel-${channel} >> text=API Keys`);
  await page.locator('dialog.modal-wide[open] #keys-results').waitFor();
  await s.axe('the keys dialog over the channels page');
  await clickAsPerson(page, 'dialog.modal-wide[open] #keys-stats >> text=+ Generate API Key');
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();
  await s.axe('the generate modal over the keys dialog');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');

  await page.goto(`/channels/${channel}/keys`);
  await s.axe('the keys page');
  await page.goto(`/channels/${full}/keys`);
  await s.axe('the keys page at its limit');
  await page.goto(`/channels/${channel}/keys?q=nothing-matches`);
  await s.axe('the keys page with no match');
  await page.goto(`/channels/${channel}/keys`);

  const modal = page.locator('#modal-stack dialog[open]');
  await clickAsPerson(page, '#keys-stats >> text=+ Generate API Key');
  await modal.locator('#key-form').waitFor();
  await s.axe('the generate modal');
  await clickAsPerson(page, modal.locator('button[name=add_cidr]'));
  await page.locator('#cidr-0').waitFor();
  await page.fill('#cidr-0', 'not a network');
  await page.fill('#key-name', ''); // the suggested default name, cleared
  await clickAsPerson(page, modal.locator('button[name=save]'));
  await page.locator('#key-name-error').waitFor();
  await s.axe('the generate modal with field errors');
  await page.fill('#key-name', 'fourth');
  await page.fill('#cidr-0', '');
  await clickAsPerson(page, modal.locator('button[name=save]'));
  await modal.locator('#revealed-key').waitFor();
  await s.axe('the reveal modal');
  await page.check('#key-saved');
  await clickAsPerson(page, '#reveal-close');
  await modal.waitFor({ state: 'detached' });

  await clickAsPerson(page, `tr#key-${k1.keyId} >> text=Deactivate`);
  await modal.locator('form.confirm').waitFor();
  await s.axe('the deactivate confirmation');
  await page.keyboard.press('Escape');
  await clickAsPerson(page, `tr#key-${k2.keyId} >> text=Activate`);
  await modal.locator('form.confirm').waitFor();
  await s.axe('the activate confirmation');
  await page.keyboard.press('Escape');

  await clickAsPerson(page, `tr#key-${k1.keyId} details.menu summary`);
  await s.axe('the keys page with a row menu open');
  await clickAsPerson(page, `tr#key-${k1.keyId} .menu-items >> text=Rename`);
  await modal.locator('#rename-form').waitFor();
  await s.axe('the rename modal');
  await page.keyboard.press('Escape');
  await clickAsPerson(page, `tr#key-${k1.keyId} details.menu summary`);
  await clickAsPerson(page, `tr#key-${k1.keyId} .menu-items >> text=Delete`);
  await modal.locator('form.confirm').waitFor();
  await s.axe('the delete confirmation');
  await page.keyboard.press('Escape');
  await clickAsPerson(page, `tr#key-${k1.keyId} a[title=Edit]`);
  await modal.locator('#key-form').waitFor();
  await s.axe('the edit modal');
  await page.keyboard.press('Escape');

  // The same forms as pages of their own (deep links, no JavaScript).
  for (const path of [`/channels/${channel}/keys/new`, `/keys/${k1.keyId}/edit`, `/keys/${k1.keyId}/rename`, `/keys/${k1.keyId}/confirm/delete`, '/channels/new', `/channels/${channel}/edit`]) {
    await page.goto(path);
    await s.axe(`the page ${path}`);
  }
  await page.goto('/no/such/page');
  await s.axe('the not-found page');
});

browserTest('modals keep Tab inside, close with Escape and give focus back to what opened them', { ...opts, timeout: 90000 }, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Focus');
  const [k1] = await createKeys(page, channel, ['focus-one', 'focus-two']);
  await page.goto('/channels');

  // New channel.
  await page.focus('a:has-text("+ New channel")');
  await page.keyboard.press('Enter');
  await page.locator('dialog[open] #channel-form').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'channel-name');
  await assertFocusTrapped(page, 'the new channel modal');
  await assertEscapeReturnsFocus(page, 'a[href="/channels/new"]', 'the new channel modal');

  // The keys dialog, then the generate modal stacked on it.
  const apiKeys = `#channel-${channel} a[href="/channels/${channel}/keys"]`;
  await page.focus(apiKeys);
  await page.keyboard.press('Enter');
  await page.locator('dialog.modal-wide[open] #keys-results').waitFor();
  assert.ok(await focusInTopDialog(page), 'focus moves into the keys dialog');
  await assertFocusTrapped(page, 'the keys dialog');
  await page.focus('dialog.modal-wide #keys-stats a');
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'key-name');
  await assertFocusTrapped(page, 'the generate modal');
  await assertEscapeReturnsFocus(page, '#keys-stats a', 'the generate modal');
  assert.equal(await page.locator('dialog.modal-wide[open]').count(), 1, 'Escape closed only the top modal');
  // The row menu inside the dialog: Escape closes the menu first, then the dialog.
  await page.focus(`dialog.modal-wide tr#key-${k1.keyId} details.menu summary`);
  await page.keyboard.press('Enter');
  await eventually(() => page.locator(`tr#key-${k1.keyId} details.menu[open]`).count().then((n) => n === 1));
  await page.keyboard.press('Escape');
  await eventually(() => page.locator(`tr#key-${k1.keyId} details.menu[open]`).count().then((n) => n === 0));
  assert.equal(await page.locator('dialog.modal-wide[open]').count(), 1, 'Escape on an open menu closes just the menu');
  await assertEscapeReturnsFocus(page, apiKeys, 'the keys dialog');

  // The × button closes too, and focus returns the same way.
  await page.focus(apiKeys);
  await page.keyboard.press('Enter');
  await page.locator('dialog.modal-wide[open]').waitFor();
  await tabTo(page, 'dialog.modal-wide .modal-close');
  await page.keyboard.press('Enter');
  await page.locator('dialog.modal-wide').waitFor({ state: 'detached' });
  assert.ok(await page.evaluate((sel) => document.activeElement.matches(sel), apiKeys), `× gives focus back (focus: ${await describeFocus(page)})`);

  // On the keys page: a confirmation, a rename opened from the row menu.
  await page.goto(`/channels/${channel}/keys`);
  const deactivate = `tr#key-${k1.keyId} a[href$="/confirm/deactivate"]`;
  await page.focus(deactivate);
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog[open] form.confirm').waitFor();
  assert.equal((await page.evaluate(() => document.activeElement.textContent)).trim(), 'Cancel', 'the safe choice has focus');
  await assertFocusTrapped(page, 'the confirmation');
  await assertEscapeReturnsFocus(page, deactivate, 'the confirmation');

  const summary = `tr#key-${k1.keyId} details.menu summary`;
  await page.focus(summary);
  await page.keyboard.press('Enter');
  await tabTo(page, `tr#key-${k1.keyId} .menu-items a[href$="/rename"]`, { max: 3 });
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog[open] #rename-form').waitFor();
  await assertFocusTrapped(page, 'the rename modal');
  await assertEscapeReturnsFocus(page, summary, 'the rename modal (menu closed, so its button)');

  // Confirming replaces the row: focus goes to the new row, not to the page's start.
  await page.focus(deactivate);
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog[open] form.confirm').waitFor();
  await tabTo(page, '#modal-stack button[type=submit]');
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog').waitFor({ state: 'detached' });
  await eventually(async () => page.evaluate((id) => document.activeElement.closest(`#key-${id}`) !== null && document.activeElement.textContent.trim() === 'Activate', k1.keyId))
    .catch(async () => assert.fail(`after confirming, focus is on ${await describeFocus(page)}, not the row's Activate button`));
});

browserTest('a key is created with the keyboard alone', opts, async (s) => {
  const { page } = s;
  await s.login();
  const channel = await createChannel(page, 'Keyboard');
  await page.goto('/channels');
  await page.keyboard.press('Tab');
  assert.equal((await page.evaluate(() => document.activeElement.textContent)).trim(), 'Skip to content', 'the first stop skips to the content');

  // Channels → API Keys (Tab and Enter only).
  await tabTo(page, `#channel-${channel} a[href="/channels/${channel}/keys"]`);
  await page.keyboard.press('Enter');
  await page.locator('dialog.modal-wide[open]').waitFor();
  await tabTo(page, 'dialog.modal-wide #keys-stats a');
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog[open] #key-form').waitFor();

  // The form: the name field has focus; type, then Tab to the rest.
  await eventually(() => page.evaluate(() => document.activeElement.id === 'key-name'));
  await page.keyboard.type('typed-with-keys');
  await page.keyboard.press('Tab');
  await page.keyboard.type('No mouse was harmed');
  await tabTo(page, '#key-form input[name=scopes][value="verify"]');
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#key-form input[name=scopes][value="verify"]'), true);
  await tabTo(page, '#key-form button[name=add_cidr]');
  await page.keyboard.press('Enter');
  await page.locator('#cidr-0').waitFor();
  // Adding a network re-renders the form with focus in the new field.
  await eventually(() => page.evaluate(() => document.activeElement.id === 'cidr-0'))
    .catch(async () => assert.fail(`after "+ Add network" focus is on ${await describeFocus(page)}, not the new field`));
  await page.keyboard.type('198.51.100.0/24');
  assert.equal(await page.inputValue('#key-name'), 'typed-with-keys');
  await tabTo(page, '#key-form button[name=save]');
  await page.keyboard.press('Enter');

  // The reveal: tick with Space, Close with Enter.
  await page.locator('#revealed-key').waitFor();
  assert.equal(await page.isDisabled('#reveal-close'), true);
  await tabTo(page, '#key-saved');
  await page.keyboard.press('Space');
  await tabTo(page, '#reveal-close');
  await page.keyboard.press('Enter');
  await page.locator('#modal-stack dialog').waitFor({ state: 'detached' });
  const row = page.locator('dialog.modal-wide #keys-results tr', { hasText: 'typed-with-keys' });
  await row.waitFor();
  assert.match(await row.textContent(), /verify/);
  assert.ok(await focusInTopDialog(page), `focus is back in the keys dialog (${await describeFocus(page)})`);
  assert.equal((await page.evaluate(() => document.activeElement.textContent)).trim(), '+ Generate API Key', 'focus returns to the Generate button');

  // Escape closes the keys dialog; the Channels table under it has been refreshed with
  // the new count, and focus lands on that channel's (new) API Keys button.
  await eventually(async () => (await page.textContent(`#channel-${channel} td[data-label=Keys]`)).trim() === '1');
  await page.keyboard.press('Escape');
  await page.locator('dialog.modal-wide').waitFor({ state: 'detached' });
  await eventually(() => page.evaluate((sel) => document.activeElement.matches(sel), `#channel-${channel} a[href="/channels/${channel}/keys"]`))
    .catch(async () => assert.fail(`after closing the keys dialog focus is on ${await describeFocus(page)}`));
});
