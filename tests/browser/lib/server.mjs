// Starts the real `latchkey` binary on a fresh SQLite database and port 0, the way a
// person would run it, and creates extra dashboard users through its command line.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, createWriteStream, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..', '..');

export const ADMIN_PASSWORD = 'admin-password-for-browser-tests';
export const USER_PASSWORD = 'user-password-for-browser-tests';
const SESSION_SECRET = 'browser-tests-session-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export function binaryPath() {
  const bin = process.env.LATCHKEY_BIN || join(REPO, 'target', 'debug', 'latchkey');
  if (!existsSync(bin)) {
    throw new Error(`latchkey binary not found at ${bin}: run \`cargo build\` first or set LATCHKEY_BIN`);
  }
  return bin;
}

/**
 * Starts a server with its own database. Returns { url, dir, env, createUser, stop, log }.
 * `env` adds or overrides environment variables (e.g. LATCHKEY_MAX_KEYS_PER_CHANNEL).
 */
export async function startServer({ env = {} } = {}) {
  const bin = binaryPath();
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-browser-'));
  const baseEnv = {
    ...process.env,
    DATABASE_URL: `sqlite://${join(dir, 'latchkey.db')}`,
    LATCHKEY_BIND: '127.0.0.1:0',
    LATCHKEY_ADMIN_PASSWORD: ADMIN_PASSWORD,
    LATCHKEY_SESSION_SECRET: SESSION_SECRET,
    LATCHKEY_WORKERS: '2',
    LATCHKEY_DB_POOL_SIZE: '4',
    // POSTback receivers in the specs are on loopback, which is internal: allowed on purpose.
    LATCHKEY_POSTBACK_ALLOW: '127.0.0.0/8,::1/128',
    LATCHKEY_LOG: process.env.LATCHKEY_LOG || 'warn',
    ...env,
  };
  delete baseEnv.LATCHKEY_PASSWORD;
  const logPath = join(dir, 'server.log');
  const log = createWriteStream(logPath);
  const child = spawn(bin, ['serve'], { env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.pipe(log);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });

  const url = await new Promise((resolveUrl, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`latchkey did not start within 20 s; log: ${logPath}`)), 20000);
    child.stdout.on('data', (chunk) => {
      buf += chunk.toString();
      log.write(chunk);
      const m = /Latchkey listening on (http:\/\/[^\s]+)/.exec(buf);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`latchkey exited with ${code} before listening:\n${safeRead(logPath)}`));
    });
  });

  async function createUser(name, role, password = USER_PASSWORD) {
    await execFileP(bin, ['user', 'create', name, '--role', role], {
      env: { ...baseEnv, LATCHKEY_PASSWORD: password },
      timeout: 20000,
    });
    return { username: name, password };
  }

  async function stop() {
    if (!exited) {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    }
    log.end();
    if (!process.env.LATCHKEY_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  }

  return { url, dir, logPath, env: baseEnv, createUser, stop, serverLog: () => safeRead(logPath) };
}

function safeRead(p) {
  try { return readFileSync(p, 'utf8'); } catch { return ''; }
}
