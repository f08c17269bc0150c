#!/usr/bin/env python3
"""A steady stream of API requests for scripts/container/container-test.sh.

Each worker keeps one keep-alive connection (reopened whenever the server closes it, as
any HTTP client does) and loops over reads and writes of one customer's ticket:
GET /tickets, GET /tickets/{id}, GET /users/me, and every fifth request a POST
/tickets/{id}/messages. Every request carries X-Request-Id PREFIX-N, so that the
replicas' logs tell which replica served which request. Prints a JSON summary: counts,
statuses, failures (a status other than the expected one, or no response at all) and
the slowest request. Loopback only, bounded by --requests or --seconds.
"""

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

USER_AGENT = "tickets-container-test"


def requests_for(ticket):
    while True:
        yield "GET", "/tickets?limit=5", None, 200
        yield "GET", f"/tickets/{ticket}", None, 200
        yield "GET", "/users/me", None, 200
        yield "GET", f"/tickets/{ticket}/messages", None, 200
        yield "POST", f"/tickets/{ticket}/messages", {"text": "Still waiting."}, 201


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.statuses = {}
        self.failures = []
        self.slowest = (0.0, "")

    def record(self, rid, method, path, status, expected, seconds, error=None):
        with self.lock:
            self.sent += 1
            key = str(status) if status is not None else "no response"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if status != expected:
                self.failures.append(
                    {"id": rid, "request": f"{method} {path}", "status": status, "error": error}
                )
            if seconds > self.slowest[0]:
                self.slowest = (seconds, f"{rid} {method} {path}")


def worker(args, stats, counter, deadline):
    url = urllib.parse.urlsplit(args.url)
    conn = None
    for method, path, body, expected in requests_for(args.ticket):
        with counter["lock"]:
            if counter["left"] is not None:
                if counter["left"] <= 0:
                    break
                counter["left"] -= 1
            counter["n"] += 1
            rid = f"{args.prefix}-{counter['n']}"
        if deadline is not None and time.monotonic() >= deadline:
            break
        headers = {
            "Authorization": f"Bearer {args.token}",
            "X-Request-Id": rid,
            "User-Agent": USER_AGENT,
        }
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        status, error = None, None
        try:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            error = f"{type(e).__name__}: {e}"
            if conn is not None:
                conn.close()
            conn = None
        stats.record(rid, method, path, status, expected, time.monotonic() - started, error)
        if args.pause > 0:
            time.sleep(args.pause)
    if conn is not None:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--token", required=True, help="a customer's bearer token")
    parser.add_argument("--ticket", required=True, type=int, help="that customer's ticket id")
    parser.add_argument("--prefix", required=True, help="X-Request-Id prefix")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between a worker's requests")
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--requests", type=int)
    limit.add_argument("--seconds", type=float)
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("load.py sends traffic to loopback addresses only")

    stats = Stats()
    counter = {"lock": threading.Lock(), "left": args.requests, "n": 0}
    deadline = time.monotonic() + args.seconds if args.seconds else None
    started = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(args, stats, counter, deadline))
        for _ in range(args.workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "requests": stats.sent,
                "failed": len(stats.failures),
                "seconds": round(elapsed, 1),
                "per_second": round(stats.sent / elapsed, 1) if elapsed else None,
                "statuses": stats.statuses,
                "slowest": {"seconds": round(stats.slowest[0], 3), "request": stats.slowest[1]},
                "failures": stats.failures[:10],
            }
        )
    )


if __name__ == "__main__":
    main()
