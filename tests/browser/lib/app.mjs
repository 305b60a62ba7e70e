// Fast set-up through the same plain HTML forms a browser without JavaScript posts
// (`page.request` shares the logged-in page's cookies; the CSRF token comes from the
// page). Only set-up goes this way: what a test checks, it does through the UI.

import assert from 'node:assert/strict';
import { csrfToken } from './browser.mjs';

async function token(page) {
  if (!/\/(channels|keys)/.test(page.url())) await page.goto('/channels');
  return csrfToken(page);
}

function form(fields) {
  const p = new URLSearchParams();
  for (const [k, v] of fields) p.append(k, v);
  return p.toString();
}

/** Posts a plain form with the page's CSRF token, as the browser would; no redirects followed. */
export async function csrfPost(page, path, fields) {
  return post(page, path, fields);
}

async function post(page, path, fields) {
  const res = await page.request.post(path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    data: form([['csrf_token', await token(page)], ...fields]),
    maxRedirects: 0,
  });
  return res;
}

/** Creates a channel (optionally with its own key limit) and returns its numeric id. */
export async function createChannel(page, name, limit = '') {
  const res = await post(page, '/channels', [['name', name], ['key_limit', String(limit)]]);
  assert.equal(res.status(), 303, `creating channel ${name} answered ${res.status()}: ${await res.text()}`);
  return channelId(page, name);
}

export async function channelId(page, name) {
  const html = await (await page.request.get('/channels')).text();
  const re = /<tr id="channel-(\d+)">\s*<td data-label="Name">\s*<span class="cell-strong">([^<]*)<\/span>/g;
  for (const m of html.matchAll(re)) {
    if (unescape(m[2]) === name) return Number(m[1]);
  }
  throw new Error(`no channel named ${name} on /channels`);
}

/**
 * Creates a key through the plain form post and returns { keyId, plain } (the one-time
 * plaintext from the reveal page, for tests that paste it).
 */
export async function createKey(page, channel, name, { scopes = ['keys:read'], description = '', extra = [] } = {}) {
  const fields = [['name', name], ['description', description], ['expires_at', ''], ['postback_url', ''], ['enabled', 'on'], ['save', '1'], ...extra];
  for (const s of scopes) fields.push(['scopes', s]);
  const res = await post(page, `/channels/${channel}/keys`, fields);
  const html = await res.text();
  assert.equal(res.status(), 200, `creating key ${name} answered ${res.status()}: ${html.slice(0, 500)}`);
  const m = /id="revealed-key"[^>]*value="([^"]+)"/.exec(html);
  assert.ok(m, `the reveal page for ${name} has no key`);
  const plain = m[1];
  return { plain, keyId: plain.split('_')[1] };
}

export async function createKeys(page, channel, names, opts) {
  const out = [];
  for (const n of names) out.push(await createKey(page, channel, n, opts));
  return out;
}

function unescape(s) {
  return s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'");
}
