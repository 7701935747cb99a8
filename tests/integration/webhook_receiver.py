"""A scriptable HTTP receiver on loopback for the webhook robot's tests: it
records every request (path, headers, body, arrival time) and answers by
path:

  /ok                 200
  /status/N           N
  /flaky/A,B,C        the k-th request of one Mailrobot-Delivery gets the
                      k-th status of the list, the last one after that
  /sleep/MS           waits MS milliseconds, then 200
  /slow-first/MS      the first request of a delivery waits MS ms, then 200
  /actions/B64        200 with the body base64url-decoded from B64 (a
                      webhook robot's "actions" answer)

Each record has "at" (request arrived) and "end" (just before the answer
was sent). It checks
nothing itself; tests do, with an independent HMAC (Python's
hmac) for the signature."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.per_delivery = defaultdict(int)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                delivery = self.headers.get("Mailrobot-Delivery", "")
                record = {"path": self.path, "headers": dict(self.headers.items()),
                          "body": body, "at": time.monotonic(), "end": None}
                with receiver.lock:
                    receiver.per_delivery[(self.path, delivery)] += 1
                    record["nth"] = receiver.per_delivery[(self.path, delivery)]
                    receiver.requests.append(record)
                status = receiver.answer(self.path, record["nth"])
                # Before the answer leaves: the next request of a key cannot
                # arrive before this moment.
                record["end"] = time.monotonic()
                payload = receiver.body_for(self.path, status)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    @staticmethod
    def body_for(path, status):
        parts = path.split("?")[0].strip("/").split("/")
        if parts[0] == "actions":
            return base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        return b"receiver says %d" % status

    @staticmethod
    def answer(path, nth):
        parts = path.split("?")[0].strip("/").split("/")
        if parts[0] == "status":
            return int(parts[1])
        if parts[0] == "flaky":
            codes = [int(c) for c in parts[1].split(",")]
            return codes[min(nth, len(codes)) - 1]
        if parts[0] == "sleep":
            time.sleep(int(parts[1]) / 1000)
        if parts[0] == "slow-first" and nth == 1:
            time.sleep(int(parts[1]) / 1000)
        return 200

    def received(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def wait_for(self, count, path=None, timeout=60, where=None):
        """Waits for count matching requests, all of them answered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [r for r in self.received(path) if where is None or where(r)]
            if len(got) >= count and all(r["end"] is not None for r in got):
                return got
            time.sleep(0.05)
        got = [r for r in self.received(path) if where is None or where(r)]
        raise AssertionError(f"{len(got)} of {count} requests to {path} within {timeout}s")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def verify_signature(request, secret):
    """Checks Mailrobot-Signature with Python's hmac: t=<unix>,v1=<hex>."""
    fields = dict(part.split("=", 1) for part in request["headers"]["Mailrobot-Signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 600


def payload(request):
    return json.loads(request["body"])
