"""Load for a perf profile: register users, open tickets, then a mixed workload
(60% GET /tickets/{id}, 20% list, 10% messages, 7% post message, 3% open) on keep-alive
connections from several threads for a fixed number of seconds."""
import http.client, json, random, sys, threading, time
HOST, PORT = "127.0.0.1", int(sys.argv[1]); SECS = float(sys.argv[2])
def conn(): return http.client.HTTPConnection(HOST, PORT, timeout=30)
def call(c, method, path, body=None, token=None):
    h = {"content-type": "application/json"}
    if token: h["authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read()
    return r.status, data
c = conn()
users = []
for i in range(20):
    email = f"p{i}-{random.random()}@x.io"
    s, _ = call(c, "POST", "/users", {"email": email, "username": f"u{i}", "password": "password-123456"})
    assert s == 201, s
    s, d = call(c, "POST", "/login", {"email": email, "password": "password-123456"})
    assert s == 200, (s, d)
    tok = json.loads(d)["token"]
    tickets = []
    for j in range(10):
        s, d = call(c, "POST", "/tickets", {"topic": f"t{j}", "text": "hello there"}, tok)
        assert s == 201, (s, d)
        tickets.append(json.loads(d)["id"])
    users.append((tok, tickets))
counts = {"ok": 0, "bad": 0}
stop = time.time() + SECS
def worker():
    c = conn(); rnd = random.Random()
    while time.time() < stop:
        tok, tickets = rnd.choice(users); t = rnd.choice(tickets); x = rnd.random()
        if x < .6: s, _ = call(c, "GET", f"/tickets/{t}", token=tok)
        elif x < .8: s, _ = call(c, "GET", "/tickets?limit=20", token=tok)
        elif x < .9: s, _ = call(c, "GET", f"/tickets/{t}/messages", token=tok)
        elif x < .97: s, _ = call(c, "POST", f"/tickets/{t}/messages", {"text": "more"}, tok)
        else: s, _ = call(c, "POST", "/tickets", {"topic": "again", "text": "x"}, tok)
        counts["ok" if s < 300 else "bad"] += 1
ts = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(counts)
