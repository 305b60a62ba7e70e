# Used by benches/callgrind/run.sh: logs in to a running server and creates a channel and
# three keys through the dashboard.
# Creates a channel and keys through the dashboard of a running server; prints JSON
# {caller, target, reader} plaintexts and ids. Usage: setup.py BASE
import json, re, sys, requests
base = sys.argv[1]
s = requests.Session()
def csrf(body):
    m = re.search(r'"X-CSRF-Token": "([^"]+)"', body) or re.search(r'name="csrf_token" value="([^"]+)"', body)
    return m.group(1)
r = s.get(base + "/login"); tok = csrf(r.text)
r = s.post(base + "/login", data={"username": "admin", "password": "profile-admin-password-long", "csrf_token": tok})
assert r.status_code == 200, r.status_code
r = s.get(base + "/channels"); tok = csrf(r.text)
r = s.post(base + "/channels", data={"name": "prof", "key_limit": "", "csrf_token": tok}, allow_redirects=False)
r = s.get(base + "/channels"); cid = re.search(r'/channels/(\d+)/keys', r.text).group(1)
def key(name, scopes, extra=()):
    r = s.get(f"{base}/channels/{cid}/keys/new"); tok = csrf(r.text)
    data = [("name", name), ("enabled", "on"), ("csrf_token", tok)] + [("scopes", x) for x in scopes] + list(extra)
    r = s.post(f"{base}/channels/{cid}/keys", data=data)
    m = re.search(r'id="revealed-key"[^>]*value="([^"]+)"', r.text)
    return m.group(1)
out = {"caller": key("caller", ["verify"]), "target": key("target", ["keys:read", "verify"]), "reader": key("reader", ["keys:read"]),
       "limited": key("limited", ["verify"], [("rate_limits", "1000000000/second"), ("credits", "1000000000000")])}
out["target_id"] = out["target"].split("_")[1]
print(json.dumps(out))
