#!/usr/bin/env bash
# The browser end-to-end suite (issue 5) for CI: installs Debian's Chromium if it is
# missing, installs the pinned npm packages, builds the debug binary if it is missing,
# and runs every browser test against it. Exits non-zero on any failure.
#
#   bash tests/browser/ci.sh
#
# LATCHKEY_BIN and CHROMIUM_PATH override the binary and the browser.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

# apt-get can meet a dpkg lock held by a finishing apt process: wait and retry.
retry_apt() {
  local i
  for i in $(seq 1 20); do
    if DEBIAN_FRONTEND=noninteractive apt-get "$@"; then return 0; fi
    echo "apt-get $1 failed (dpkg lock held?); retrying in 5 s ($i/20)" >&2
    sleep 5
  done
  echo "apt-get $* kept failing" >&2
  return 1
}

if [ ! -x "$chromium" ]; then
  echo "=== installing Chromium (Debian packages chromium, chromium-driver)"
  retry_apt update -qq
  retry_apt install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
"$chromium" --version 2>/dev/null | grep -v 'unexpected operator' || true

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "browser tests need Node.js 20+ and npm (not found)" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "browser tests need Node.js 20+ (found $(node --version))" >&2
  exit 1
fi

echo "=== npm ci (tests/browser)"
(cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

bin="${LATCHKEY_BIN:-$repo/target/debug/latchkey}"
if [ ! -x "$bin" ]; then
  echo "=== cargo build (the suite runs the debug binary)"
  (cd "$repo" && cargo build)
fi

echo "=== browser tests"
cd "$here"
LATCHKEY_BIN="$bin" CHROMIUM_PATH="$chromium" node run.mjs
