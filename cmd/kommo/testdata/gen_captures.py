# Writes the captured requests verify-request's golden tests read. Run with
# python3 from cmd/kommo/testdata; it signs independently of the Go code
# (hmac, hashlib), so the fixtures also cross-check chatsign.
import hashlib, hmac, json

SECRET = "test-channel-secret"
DATE = "Tue, 13 Dec 2022 11:00:00 +0000"
SCOPE = "/v2/origin/custom/f62a0162-46a7-430e-b06c-0ef798d76a21_52fd2a28-d2eb-4bd8-b862-a67934927b38"
BODY = json.dumps({"event_type": "new_message", "payload": {"msgid": "m-1", "conversation_id": "c-1",
    "sender": {"id": "u-1", "name": "Ann"}, "message": {"type": "text", "text": "Hello"}}}, separators=(",", ":"))

def md5(b): return hashlib.md5(b.encode()).hexdigest()
def sign(method, m, ct, date, path, secret=SECRET, algo=hashlib.sha1):
    return hmac.new(secret.encode(), "\n".join([method, m, ct, date, path]).encode(), algo).hexdigest()

def raw(name, method, target, headers, body=""):
    lines = [f"{method} {target} HTTP/1.1", "Host: amojo.kommo.com"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body.encode())}")
    with open(f"requests/{name}.http", "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n\r\n" + body)

def hdrs(m, ct, sig, date=DATE):
    return [("Date", date), ("Content-Type", ct), ("Content-MD5", m), ("X-Signature", sig)]

J = "application/json"
raw("valid", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, DATE, SCOPE)), BODY)
hist = SCOPE + "/chats/c-1/history"
raw("valid-get", "GET", hist + "?limit=50&offset=0", hdrs(md5(""), J, sign("GET", md5(""), J, DATE, hist)))
raw("query-signed", "GET", hist + "?limit=50", hdrs(md5(""), J, sign("GET", md5(""), J, DATE, hist + "?limit=50")))
pretty = json.dumps(json.loads(BODY), indent=2)
raw("body-reserialised", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, DATE, SCOPE)), pretty)
raw("trailing-newline", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, DATE, SCOPE)), BODY + "\n")
up = md5(BODY).upper()
raw("md5-upper", "POST", SCOPE, hdrs(up, J, sign("POST", up, J, DATE, SCOPE)), BODY)
cs = "application/json; charset=utf-8"
raw("content-type-differs", "POST", SCOPE, hdrs(md5(BODY), cs, sign("POST", md5(BODY), J, DATE, SCOPE)), BODY)
old = "Tue, 13 Dec 2022 10:40:00 +0000"
raw("date-off", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, old, SCOPE), date=old), BODY)
raw("wrong-secret", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, DATE, SCOPE, secret="another-channel")), BODY)
raw("hmac-sha256", "POST", SCOPE, hdrs(md5(BODY), J, sign("POST", md5(BODY), J, DATE, SCOPE, algo=hashlib.sha256)), BODY)
raw("missing-headers", "POST", SCOPE, [("Content-Type", J)], BODY)
with open("requests/body.json", "w") as f:
    f.write(BODY + "\n")  # as an editor saves it: curl -d @ drops the newline
with open("requests/valid-curl.txt", "w") as f:
    f.write(f"curl -X POST 'https://amojo.kommo.com{SCOPE}' \\\n  -H 'Date: {DATE}' \\\n  -H 'Content-Type: {J}' \\\n"
            f"  -H 'Content-MD5: {md5(BODY)}' \\\n  -H 'X-Signature: {sign('POST', md5(BODY), J, DATE, SCOPE)}' \\\n  -d @testdata/requests/body.json\n")
with open("requests/curl-data-binary.txt", "w") as f:
    f.write(f"curl -X POST 'https://amojo.kommo.com{SCOPE}' -H 'Date: {DATE}' -H 'Content-Type: {J}' "
            f"-H 'Content-MD5: {md5(BODY)}' -H 'X-Signature: {sign('POST', md5(BODY), J, DATE, SCOPE)}' --data-binary @testdata/requests/body.json\n")

HOOK = json.dumps({"account_id": "52fd2a28-d2eb-4bd8-b862-a67934927b38", "time": 1670929200,
    "message": {"conversation": {"id": "c-amojo", "client_id": "c-1"}, "message": {"id": "m-amojo", "type": "text", "text": "Hi"}}},
    separators=(",", ":"))
with open("webhooks/hook.json", "w") as f:
    f.write(HOOK)
with open("webhooks/hook-newline.json", "w") as f:
    f.write(HOOK + "\n")
with open("webhooks/signatures.txt", "w") as f:
    f.write("sha1 " + hmac.new(SECRET.encode(), HOOK.encode(), hashlib.sha1).hexdigest() + "\n")
    f.write("sha256 " + hmac.new(SECRET.encode(), HOOK.encode(), hashlib.sha256).hexdigest() + "\n")
# Typed by hand: LF line ends, no Content-Length, the file's final newline.
with open("requests/valid-no-content-length.http", "w") as f:
    f.write(f"POST {SCOPE} HTTP/1.1\nHost: amojo.kommo.com\nDate: {DATE}\nContent-Type: {J}\nContent-MD5: {md5(BODY)}\n"
            f"X-Signature: {sign('POST', md5(BODY), J, DATE, SCOPE)}\n\n{BODY}\n")
