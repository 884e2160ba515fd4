#!/usr/bin/env python3
"""A non-Go integration's test against `kommo fake`, with only python3's
standard library: it signs Chat API requests by hand, connects the channel,
sends a message, reads the chat's history and receives a signed webhook
through the fake's admin API. The settings come from the shell variables
`kommo fake --env-file` writes. Each step prints one line; any failure
raises."""
import hashlib, hmac, http.server, json, os, threading, time, urllib.error, urllib.request

BASE = os.environ["KOMMO_BASE_URL"]
CHANNEL = os.environ["KOMMO_CHANNEL_ID"]
SECRET = os.environ["KOMMO_CHANNEL_SECRET"]
ACCOUNT = os.environ["KOMMO_ACCOUNT_AMOJO_ID"]


def chat_api(method, path, body=None, query=""):
    data = b"" if body is None else json.dumps(body).encode()
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    md5 = hashlib.md5(data).hexdigest()
    ctype = "application/json"
    # METHOD \n Content-MD5 \n Content-Type \n Date \n path: the query is not signed.
    to_sign = "\n".join([method, md5, ctype, date, path])
    sig = hmac.new(SECRET.encode(), to_sign.encode(), hashlib.sha1).hexdigest()
    req = urllib.request.Request(BASE + path + query, data=data if body is not None else None, method=method,
                                 headers={"Date": date, "Content-Type": ctype, "Content-MD5": md5, "X-Signature": sig})
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None


def admin(method, path, body=None):
    req = urllib.request.Request(BASE + "/_kommotest/" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


status, out = chat_api("POST", f"/v2/origin/custom/{CHANNEL}/connect",
                       {"account_id": ACCOUNT, "title": "python integration", "hook_api_version": "v2"})
scope = out["scope_id"]
print("connect", status, scope == f"{CHANNEL}_{ACCOUNT}")

now = int(time.time())
status, out = chat_api("POST", f"/v2/origin/custom/{scope}", {"event_type": "new_message", "payload": {
    "timestamp": now, "msec_timestamp": now * 1000, "msgid": "py-msg-1", "conversation_id": "py-chat-1",
    "sender": {"id": "py-user-1", "name": "Pat Python"}, "message": {"type": "text", "text": "Hello from Python"}}})
chat_id = out["new_message"]["conversation_id"]
print("send", status, out["new_message"]["msgid"] != "")

status, out = chat_api("GET", f"/v2/origin/custom/{scope}/chats/{chat_id}/history", query="?limit=50")
texts = [m["message"]["text"] for m in out["messages"]]
print("history", status, texts)

# A signature made over the query too is refused, as Kommo does.
try:
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    p = f"/v2/origin/custom/{scope}/chats/{chat_id}/history?limit=50"
    sig = hmac.new(SECRET.encode(), "\n".join(["GET", hashlib.md5(b"").hexdigest(), "application/json", date, p]).encode(), hashlib.sha1).hexdigest()
    urllib.request.urlopen(urllib.request.Request(BASE + p, headers={"Date": date, "Content-Type": "application/json",
                           "Content-MD5": hashlib.md5(b"").hexdigest(), "X-Signature": sig}), timeout=5)
    print("query-signed accepted")
except urllib.error.HTTPError as e:
    print("query-signed refused", e.code)

received = {}


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        received["valid"] = hmac.compare_digest(want, self.headers["X-Signature"])
        received["path"] = self.path
        received["text"] = json.loads(body)["message"]["message"]["text"]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


hooks = http.server.HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hooks.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{hooks.server_address[1]}/kommo/:scope_id"
out = admin("POST", "webhooks", {"url": url, "event": {"type": "manager_message", "chat": "py-chat-1", "text": "Hi, Pat"}})
print("webhook", out["delivered"], received.get("valid"), received.get("path") == f"/kommo/{scope}", received.get("text"))

out = admin("POST", "faults", {"kind": "status", "count": 1, "status": 503})
try:
    chat_api("GET", f"/v2/origin/custom/{scope}/chats/{chat_id}/history")
    print("fault not applied")
except urllib.error.HTTPError as e:
    print("fault", e.code)

state = admin("GET", "state")
print("state", [(m["text"], m["incoming"]) for c in state["chats"] for m in c["messages"]])
admin("POST", "reset")
print("reset", admin("GET", "state")["chats"])
hooks.shutdown()
