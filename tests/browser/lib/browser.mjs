// One headless Chromium per test (a fresh profile each time), a page that records every
// console error, uncaught exception, CSP violation and 5xx answer, and the helpers the
// tests use to act like a person: log in, open dialogs, tab around, run axe.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { REPO, ADMIN_PASSWORD } from './server.mjs';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const SCREENSHOTS = join(REPO, 'target', 'screenshots');
const FAILURES = join(SCREENSHOTS, 'failures');

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

// Runs in every document before the app's own scripts: reports CSP violations and
// script errors to the test through a binding (works under the strict CSP, since
// the binding and this script are installed through the DevTools protocol).
function installProblemReporter() {
  const report = (kind, text) => {
    try { window.__lkProblem(kind, text, location.href); } catch (_) { /* binding gone */ }
  };
  document.addEventListener('securitypolicyviolation', (e) => {
    report('csp', `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} in ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
  }, true);
  window.addEventListener('error', (e) => {
    if (e.target && e.target !== window && e.target.tagName) {
      report('resource', `failed to load <${e.target.tagName.toLowerCase()}> ${e.target.src || e.target.href || ''}`);
    }
  }, true);
  window.addEventListener('unhandledrejection', (e) => report('rejection', String(e.reason)));
}

/**
 * `browserTest(name, options, fn)`: a node:test test with a fresh browser. `fn(s, t)`
 * gets a session `s` (see `openBrowser`); an option given as a function (e.g.
 * `baseURL: () => server.url`) is read when the test starts. The test fails if the page logged a console
 * error, threw, broke the CSP or got a 5xx, unless the test allowed that message.
 */
export function browserTest(name, options, fn) {
  if (typeof options === 'function') { fn = options; options = {}; }
  const { timeout = 60000, skip, only, knownBug, ...browserOptions } = options;
  return test(name, { timeout, skip, only }, async (t) => {
    const resolved = Object.fromEntries(Object.entries(browserOptions).map(([k, v]) => [k, typeof v === 'function' ? v() : v]));
    const s = await openBrowser(resolved);
    try {
      await fn(s, t);
      s.assertNoProblems();
    } catch (e) {
      if (knownBug) {
        // A known product bug, written down as a test of the right behaviour: it is
        // reported as TODO and does not fail the suite...
        t.todo(`known bug: ${knownBug} (${String(e.message).split('\n')[0]})`);
        return;
      }
      await s.failureShot(name);
      throw e;
    } finally {
      await s.close();
    }
    // ...until the bug is fixed: then the marker must go.
    if (knownBug) throw new Error(`this test passes now, so the known bug looks fixed: remove \`knownBug\` (${knownBug})`);
  });
}

export async function openBrowser({ baseURL, javaScriptEnabled = true, viewport = { width: 1280, height: 800 }, permissions = [], reducedMotion = 'reduce' } = {}) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const context = await browser.newContext({
    baseURL,
    viewport,
    javaScriptEnabled,
    permissions,
    reducedMotion,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(10000);
  const problems = [];
  // A form that fails validation is re-rendered with 422 (STYLE.md: "Form validation
  // is not an error"), and Chromium logs every 4xx answer to a fetch as a console
  // error. That one line is expected; every other status still counts.
  const allowed = [/^Failed to load resource: the server responded with a status of 422 \(Unprocessable Entity\)$/];
  const add = (kind, text, url) => problems.push({ kind, text, url });
  await context.exposeBinding('__lkProblem', (_source, kind, text, url) => add(kind, text, url));
  await context.addInitScript(installProblemReporter);
  // The last requests, printed when a test fails: what the page asked and got.
  const recent = [];
  const watch = (page) => {
    page.on('console', (msg) => {
      const text = msg.text();
      if (process.env.LATCHKEY_BROWSER_LOG) process.stderr.write(`[browser ${msg.type()}] ${text}\n`);
      if (msg.type() === 'error') add('console', text, page.url());
      else if (/Content[- ]Security[- ]Policy/i.test(text)) add('csp', text, page.url());
    });
    page.on('pageerror', (err) => add('pageerror', String(err && err.stack || err), page.url()));
    page.on('response', (res) => {
      const req = res.request();
      const kind = req.headers()['hx-request'] ? 'htmx' : req.resourceType();
      if (kind !== 'stylesheet' && kind !== 'script' && kind !== 'image') {
        recent.push(`${res.status()} ${req.method()} ${res.url()} (${kind})`);
        if (recent.length > 25) recent.shift();
      }
      if (res.status() >= 500) add('http', `${res.status()} ${res.request().method()} ${res.url()}`, page.url());
    });
  };
  context.on('page', watch);
  const page = await context.newPage();

  const s = {
    browser,
    context,
    page,
    problems,
    /** Accepts problems whose text matches `re` (for a test that provokes an error on purpose). */
    allow(re) { allowed.push(re); },
    unexpectedProblems() {
      return problems.filter((p) => !allowed.some((re) => re.test(p.text)));
    },
    assertNoProblems() {
      const bad = s.unexpectedProblems();
      assert.deepEqual(bad, [], `the pages reported errors:\n${bad.map((p) => `  [${p.kind}] ${p.text} (on ${p.url})`).join('\n')}`);
    },
    async failureShot(name) {
      process.stderr.write(`--- ${name}: pages ${context.pages().map((p) => p.url()).join(', ')}\n`);
      process.stderr.write(`--- last requests:\n${recent.map((r) => `  ${r}`).join('\n')}\n`);
      if (problems.length) process.stderr.write(`--- page problems:\n${problems.map((p) => `  [${p.kind}] ${p.text}`).join('\n')}\n`);
      try {
        mkdirSync(FAILURES, { recursive: true });
        for (const [i, p] of context.pages().entries()) {
          await p.screenshot({ path: join(FAILURES, `${slug(name)}-${i}.png`), fullPage: true, caret: 'initial', timeout: 3000 });
        }
      } catch { /* the browser may be gone */ }
    },
    async close() {
      await context.close().catch(() => {});
      await browser.close().catch(() => {});
    },
    login: (username, password) => login(page, username, password),
    shot: (name, opts) => shot(page, name, opts),
    axe: (label, opts) => checkAxe(page, label, opts),
    csrf: () => csrfToken(page),
  };
  return s;
}

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
}

export async function login(page, username = 'admin', password = ADMIN_PASSWORD) {
  await page.goto('/login');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL(/\/channels$/),
    page.click('form[action="/login"] button[type=submit]'),
  ]);
}

/** The CSRF token the page gives htmx (`<body hx-headers>`). */
export async function csrfToken(page) {
  const raw = await page.getAttribute('body', 'hx-headers');
  return JSON.parse(raw)['X-CSRF-Token'];
}

export async function shot(page, name, { fullPage = false } = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  // Let transitions settle (the context prefers reduced motion, so there are few).
  // Playwright's own animation/caret hiding injects a <style>, which the app's CSP
  // rightly refuses, so neither is used.
  await page.waitForTimeout(150);
  await page.screenshot({ path, fullPage, caret: 'initial' });
  return path;
}

/**
 * Runs axe-core in the page (through the DevTools protocol, so the app's CSP needs no
 * relaxing and keeps being watched) and fails on serious or critical violations.
 */
export async function checkAxe(page, label, { include } = {}) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  if (!has) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (include) => {
    const ctx = include ? { include: [include] } : document;
    const r = await window.axe.run(ctx, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')} — ${n.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  }, include || null);
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (process.env.LATCHKEY_AXE_WARN && serious.length) {
    console.log(`AXE ${label}: ${JSON.stringify(serious, null, 1)}`);
    return violations;
  }
  assert.deepEqual(serious, [], `axe found serious/critical violations on ${label}:\n${JSON.stringify(serious, null, 2)}`);
  return violations;
}

/** Polls `fn` until it stops throwing (or returns truthy), like a person waiting. */
export async function eventually(fn, { timeout = 5000, interval = 50 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false) return v;
      last = new Error('condition stayed false');
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw last;
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Presses Tab (or Shift+Tab) until the focused element matches `selector`. Keyboard only. */
export async function tabTo(page, selector, { max = 60, back = false } = {}) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), selector)) return i;
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
  }
  const where = await describeFocus(page);
  throw new Error(`Tab never reached ${selector} (focus is on ${where})`);
}

export async function describeFocus(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el) return 'nothing';
    const text = (el.getAttribute('aria-label') || el.textContent || el.value || '').trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${text}"`;
  });
}

/** The open dialog on top of the stack (the last one in document order that is open). */
export async function topDialogHandle(page) {
  return page.evaluateHandle(() => {
    const open = [...document.querySelectorAll('dialog[open]')];
    return open[open.length - 1] || null;
  });
}

/**
 * Clicks `selector` the way a person can: the element must already be inside the
 * viewport and be what is on top at its centre (`document.elementFromPoint`), and the
 * click lands at that point. Playwright's own click scrolls inside containers first,
 * which once hid a row menu that people could not reach.
 */
export async function clickAsPerson(page, selector, { within = 1000 } = {}) {
  const el = typeof selector === 'string' ? page.locator(selector).first() : selector.first();
  const what = typeof selector === 'string' ? selector : String(selector);
  await el.waitFor({ state: 'visible' });
  // Below or above the fold, a person scrolls the page (or the open dialog they are
  // in) with the wheel, never a container inside it: what a scrolling card clips stays
  // clipped, and is reported as covered.
  await el.evaluate((node) => {
    const r = node.getBoundingClientRect();
    if (r.top >= 0 && r.bottom <= window.innerHeight) return;
    const delta = r.top < 0 ? r.top - 16 : r.bottom - window.innerHeight + 16;
    const dialog = node.closest('dialog[open]');
    if (dialog) dialog.scrollTop += delta;
    else window.scrollBy(0, delta);
  });
  // A person cannot click within a frame of what opened it: give the page `within` ms
  // (a menu is placed on its toggle event, a task after the click) to show it.
  const end = Date.now() + within;
  let where;
  for (;;) {
    where = await el.evaluate((node) => {
      const r = node.getBoundingClientRect();
      const x = r.left + r.width / 2;
      const y = r.top + r.height / 2;
      const inside = r.width > 0 && r.height > 0 && x >= 0 && y >= 0 && x <= window.innerWidth && y <= window.innerHeight;
      const top = inside ? document.elementFromPoint(x, y) : null;
      const covered = !top || (top !== node && !node.contains(top));
      return { x, y, inside, covered, top: top ? `${top.tagName.toLowerCase()}${top.id ? '#' + top.id : ''}.${[...top.classList].join('.')} "${(top.textContent || '').trim().slice(0, 30)}"` : null };
    });
    if ((where.inside && !where.covered) || Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(where.inside, `${what} is outside the viewport`);
  assert.ok(!where.covered, `${what} is covered at its centre by ${where.top}`);
  await page.mouse.click(where.x, where.y);
}
