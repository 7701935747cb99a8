#!/usr/bin/env python3
"""A complete receiver for a mailrobot webhook robot, standard library only.

  WEBHOOK_SECRET=... python3 webhook_receiver.py [PORT]

For each POST it
  1. verifies Mailrobot-Signature (HMAC-SHA256 over "<t>.<body>" with the
     robot's secret; the time stamp must be within 5 minutes),
  2. drops duplicates by Mailrobot-Delivery (mailrobot delivers at least
     once: after a crash or a network error the same delivery can come
     again; it always carries the same id),
  3. handles the mail (here: prints who wrote about what),
  4. answers 2xx only when the mail is safely handled. 5xx, 408 and 429 make
     mailrobot retry later; other 4xx send the mail to the dead-letter topic.

The delivery ids seen are kept in SQLite, so duplicates are caught across
restarts too.
"""

import hashlib
import hmac
import json
import os
import sqlite3
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["WEBHOOK_SECRET"].encode()
TOLERANCE_SECONDS = 300
DB = sqlite3.connect(os.environ.get("RECEIVER_DB", "deliveries.sqlite"), check_same_thread=False)
DB.execute("CREATE TABLE IF NOT EXISTS seen (delivery TEXT PRIMARY KEY, at REAL)")


def signature_ok(header, body):
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - stamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(SECRET, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


def first_time(delivery):
    """Records the delivery id; False if it was seen before."""
    try:
        with DB:
            DB.execute("INSERT INTO seen VALUES (?, ?)", (delivery, time.time()))
        return True
    except sqlite3.IntegrityError:
        return False


def handle(mail):
    sender = mail["from"][0]["address"] if mail["from"] else mail["envelope"]["sender"]
    print(f"{mail['received_at']} {sender} -> {mail['envelope']['recipient']}: "
          f"{mail['subject']!r} ({len(mail['attachments'])} attachments)", flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not signature_ok(self.headers.get("Mailrobot-Signature", ""), body):
            return self.answer(401, "bad signature")  # a 4xx: dead letter, not retried
        delivery = self.headers["Mailrobot-Delivery"]
        if not first_time(delivery):
            return self.answer(200, "duplicate, already handled")
        try:
            handle(json.loads(body))
        except Exception as exc:  # not handled: let mailrobot retry
            with DB:
                DB.execute("DELETE FROM seen WHERE delivery = ?", (delivery,))
            return self.answer(503, f"could not handle it: {exc}")
        return self.answer(200, "ok")

    def answer(self, status, text):
        data = text.encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    print(f"listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Receiver).serve_forever()
