#!/usr/bin/env python3
"""Conformance of the JSON API to its own OpenAPI document, checked by schemathesis
(a tool nobody here wrote): no 5xx, no response that breaks the documented schema, no
undocumented status code.

Starts the server on a fresh SQLite database (loopback only; the POSTback worker never
polls, so no generated POSTback URL is ever contacted), logs in as the first admin,
makes a key with every scope in the system channel, and runs schemathesis with a fixed
seed against /api/v1/openapi.json.

    python3 tests/conformance/run.py [--bin target/debug/latchkey] [--max-examples N]
"""

import argparse
import html
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

PASSWORD = "conformance-admin-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def make_key(base):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(jar), NoRedirect
    )

    def get(path):
        return opener.open(base + path).read().decode()

    def post(path, fields):
        data = urllib.parse.urlencode(fields).encode()
        try:
            return opener.open(base + path, data).read().decode()
        except urllib.error.HTTPError as e:
            if e.code in (302, 303):
                return ""
            raise

    def csrf(page):
        return re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)

    token = csrf(get("/login"))
    post("/login", [("username", "admin"), ("password", PASSWORD), ("csrf_token", token)])
    token = csrf(get("/channels"))
    fields = [("name", "conformance"), ("enabled", "on"), ("csrf_token", token)]
    fields += [("scopes", s) for s in ("keys:read", "keys:write", "keys:admin", "verify")]
    page = post("/channels/1/keys", fields)
    return html.unescape(re.search(r'id="revealed-key"[^>]*value="([^"]+)"', page).group(1))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.path.join(repo, "target", "debug", "latchkey"))
    p.add_argument("--max-examples", default="30")
    args = p.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": os.path.join(tmp, "conformance.db"),
            "LATCHKEY_BIND": f"127.0.0.1:{port}",
            "LATCHKEY_ADMIN_PASSWORD": PASSWORD,
            "LATCHKEY_SESSION_SECRET": "conformance-session-secret-0123456789abcdef",
            "LATCHKEY_POSTBACK_POLL_MS": "1000000000",
            "LATCHKEY_LOG": "warn",
        }
        log = open(os.path.join(tmp, "server.log"), "w")
        server = subprocess.Popen([args.bin], env=env, stdout=log, stderr=log)
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            key = make_key(base)
            cmd = [
                "schemathesis", "run", f"{base}/api/v1/openapi.json",
                "--url", f"{base}/api/v1",
                "-H", f"Authorization: Bearer {key}",
                # What the API promises: no 5xx, every status code documented, every
                # response in its documented schema and content type. (Not checked:
                # that every schema-valid body is accepted: the server refuses values
                # JSON Schema cannot say, like an expiry in the past.)
                "--checks",
                "not_a_server_error,status_code_conformance,"
                "response_schema_conformance,content_type_conformance",
                "--max-examples", args.max_examples,
                "--seed", "20261129",
                "--no-color",
            ]
            print("running:", " ".join(c if "Bearer" not in c else "-H Authorization: Bearer …" for c in cmd), flush=True)
            code = subprocess.call(cmd)
        finally:
            server.terminate()
            server.wait(timeout=15)
            log.close()
            if server.returncode not in (0, -15):
                print(open(os.path.join(tmp, "server.log")).read()[-4000:])
    sys.exit(code)


if __name__ == "__main__":
    main()
