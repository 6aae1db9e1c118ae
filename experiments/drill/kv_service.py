#!/usr/bin/python3
"""A toy replicated key-value service for the failover drill
(experiments/primary-failover-drill.yaml). Standard library only.

  primary:  kv_service.py --role primary --listen 0.0.0.0:8080
  replica:  kv_service.py --role replica --listen 0.0.0.0:8080 \
                --primary http://10.231.3.2:8080 --lag 2

HTTP API:
  GET  /health           200 "ok role=primary|replica|promoted"
  POST /write?seq=N      store marker N (primary or promoted replica only)
  GET  /latest           "seq=N" newest marker stored, "seq=0" if none
  GET  /log?after=N&before=T   entries "N TS" with N > after and TS <= T
  POST /promote          replica stops replicating and accepts writes

The replica is a *delayed* replica: it only pulls entries that are at
least --lag seconds old, so when the primary dies the replica is missing
the last --lag seconds of writes -- a known, controllable RPO.
"""
import argparse
import http.server
import threading
import time
import urllib.parse
import urllib.request

lock = threading.Lock()
log = []  # [(seq, ts)]
state = {"role": "primary"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/health":
            return self.reply(200, "ok role=%s\n" % state["role"])
        if u.path == "/latest":
            with lock:
                seq = log[-1][0] if log else 0
            return self.reply(200, "seq=%d\n" % seq)
        if u.path == "/log":
            after = int(q.get("after", ["0"])[0])
            before = float(q.get("before", [str(time.time())])[0])
            with lock:
                rows = [e for e in log if e[0] > after and e[1] <= before]
            return self.reply(200, "".join("%d %.6f\n" % e for e in rows))
        self.reply(404, "not found\n")

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if u.path == "/promote":
            state["role"] = "promoted"
            return self.reply(200, "promoted\n")
        if u.path == "/write":
            if state["role"] == "replica":
                return self.reply(503, "read-only replica\n")
            try:
                seq = int(q["seq"][0])
            except (KeyError, ValueError):
                return self.reply(400, "need seq=N\n")
            with lock:
                log.append((seq, time.time()))
            return self.reply(200, "stored seq=%d\n" % seq)
        self.reply(404, "not found\n")


def replicate(primary, lag):
    # Never through an http_proxy from the environment: the primary is local.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    last = 0
    while state["role"] == "replica":
        try:
            url = "%s/log?after=%d&before=%.6f" % (primary, last, time.time() - lag)
            with opener.open(url, timeout=0.5) as r:
                for line in r.read().decode().split("\n"):
                    if line and state["role"] == "replica":
                        seq, ts = line.split()
                        with lock:
                            log.append((int(seq), float(ts)))
                        last = int(seq)
        except Exception:
            pass
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["primary", "replica"], required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--primary")
    ap.add_argument("--lag", type=float, default=0.0)
    a = ap.parse_args()
    state["role"] = a.role
    host, port = a.listen.rsplit(":", 1)
    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    if a.role == "replica":
        threading.Thread(target=replicate, args=(a.primary, a.lag), daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
