#!/usr/bin/env node
// Runs the browser suite with Node's built-in test runner against an already built
// `latchkey` binary. Builds nothing.
//
//   node run.mjs [--bin PATH] [--concurrency N] [spec-name-filter ...]
//
// The binary is, in order: --bin, $LATCHKEY_BIN, ../../target/debug/latchkey.
// Chromium is $CHROMIUM_PATH or /usr/bin/chromium. Exits non-zero when a test fails.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');

const args = process.argv.slice(2);
let bin = process.env.LATCHKEY_BIN || join(repo, 'target', 'debug', 'latchkey');
let concurrency = process.env.BROWSER_TEST_CONCURRENCY || '2';
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--bin') bin = args[++i];
  else if (args[i].startsWith('--bin=')) bin = args[i].slice(6);
  else if (args[i] === '--concurrency') concurrency = args[++i];
  else if (args[i] === '--help' || args[i] === '-h') {
    console.log('usage: node run.mjs [--bin PATH] [--concurrency N] [spec-name-filter ...]');
    process.exit(0);
  } else filters.push(args[i]);
}
bin = resolve(bin);
const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const fail = (msg) => { console.error(`browser tests: ${msg}`); process.exit(2); };
if (!existsSync(bin)) fail(`no latchkey binary at ${bin} (run \`cargo build\` first, or pass --bin / set LATCHKEY_BIN)`);
if (!existsSync(chromium)) fail(`no Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM_PATH)`);
if (!existsSync(join(here, 'node_modules', 'playwright-core'))) fail('dependencies missing: run `npm ci` in tests/browser');

const specsDir = join(here, 'specs');
const specs = readdirSync(specsDir)
  .filter((f) => f.endsWith('.test.mjs'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
  .map((f) => join('specs', f));
if (specs.length === 0) fail(`no spec matches ${filters.join(' ')}`);

mkdirSync(join(repo, 'target', 'screenshots'), { recursive: true });
// Failure pictures are from this run only.
rmSync(join(repo, 'target', 'screenshots', 'failures'), { recursive: true, force: true });
const work = mkdtempSync(join(tmpdir(), 'latchkey-browser-run-'));
const tap = join(work, 'results.tap');
console.log(`browser tests: ${specs.length} spec files, concurrency ${concurrency}`);
console.log(`  binary:   ${bin}`);
console.log(`  chromium: ${chromium}`);
console.log(`  screenshots: ${join(repo, 'target', 'screenshots')}`);

const started = Date.now();
const child = spawn(process.execPath, [
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=tap', `--test-reporter-destination=${tap}`,
  ...specs,
], {
  cwd: here,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, LATCHKEY_BIN: bin, CHROMIUM_PATH: chromium },
});
const code = await new Promise((r) => child.on('exit', (c, sig) => r(c ?? (sig ? 1 : 0))));
const secs = ((Date.now() - started) / 1000).toFixed(1);

// The top-level TAP summary ("# pass N" / "# fail N") counts the tests.
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => { const m = new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text); return m ? Number(m[1]) : 0; };
const passed = count('pass');
const failed = count('fail') + count('cancelled');
const skipped = count('skipped');
const todo = count('todo');
// Names of the failing tests, for a summary that fits on a screen.
const failing = [...text.matchAll(/^\s*not ok \d+ - (.*)$/gm)].map((m) => m[1]).filter((n) => !/# TODO/.test(n) && !n.endsWith('.test.mjs') && !/^specs\//.test(n));
// Known product bugs, written down as `todo` tests: they run, and are listed, but do not fail the suite.
const todos = [...text.matchAll(/^\s*(?:not )?ok \d+ - (.*?) # TODO(.*)$/gm)].map((m) => `${m[1]} —${m[2].replace(/\\#/g, '#')}`);
rmSync(work, { recursive: true, force: true });

console.log('');
console.log(`browser tests finished in ${secs}s`);
if (failing.length) {
  console.log('failing:');
  for (const n of failing) console.log(`  ✖ ${n}`);
}
if (todos.length) {
  console.log('known product bugs (todo tests):');
  for (const n of todos) console.log(`  … ${n}`);
}
if (todo) console.log(`${todo} todo test(s) (known bugs, not counted)`);
console.log(`browser: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(code !== 0 || failed > 0 || passed === 0 ? 1 : 0);
