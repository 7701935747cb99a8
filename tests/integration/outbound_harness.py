"""Helpers for the outbound sender's tests (test_outbound_*.py):

- Scenario: a topic prefix of its own with its topics, records put on its
  outbound topic as a robot's worker writes them, and a worker configured
  for the relay under test;
- make_certificates: a CA and a certificate for 127.0.0.1 signed by it;
- Relay: a scriptable SMTP relay on loopback (aiosmtpd; smtps with an
  ssl_context). It keeps every message it accepted with its envelope, counts
connections (EHLOs) and sessions in progress, checks AUTH, and answers as
the test scripts it: a reply code for a recipient, for MAIL FROM or for
DATA (the first n times), a delay before the 250 after DATA."""

import asyncio
import json
import secrets
import signal
import subprocess
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from confluent_kafka import Producer

from mailrobot_harness import (CTL, clean_env, free_port, read_records, start_worker,
                               stop_worker, unique)


def parse(data):
    return BytesParser(policy=policy.default).parsebytes(data)




def make_certificates(d):
    """A CA and a certificate for 127.0.0.1 signed by it."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=mailrobot test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    for name in ("server.key", "server.pem", "ca.pem"):
        (d / name).chmod(0o644)


class Relay:
    def __init__(self, login=None, password=None, port=None, ssl_context=None):
        self.messages = []       # dicts: mail_from, rcpt_tos, data (bytes), at, login
        self.connections = 0
        self.busy = 0            # transactions between MAIL and the end of DATA
        self.most_busy = 0
        self.data_delay = 0.0
        self.rcpt_replies = {}   # address -> reply
        self.mail_reply = None   # (reply, times) for MAIL FROM
        self.data_reply = None   # (reply, times) for DATA
        self.logins = []
        self.lock = threading.Lock()
        self.login, self.password = login, password
        self.port = port or free_port()
        kwargs = {"ssl_context": ssl_context} if ssl_context else {}
        if login is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self.scheme = "smtps" if ssl_context else "smtp"
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10, **kwargs)
        self.controller.start()

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def close(self):
        self.controller.stop()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.login
              and auth_data.password.decode() == self.password)
        self.logins.append((mechanism, auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    @staticmethod
    def _scripted(slot):
        reply, times = slot
        return reply, (reply, times - 1) if times > 1 else None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply is not None:
            reply, self.mail_reply = self._scripted(self.mail_reply)
            if reply.startswith("421"):   # 421: the relay closes the connection after it
                asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return reply
        with self.lock:
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            self._done()
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _done(self):
        with self.lock:
            self.busy = max(0, self.busy - 1)

    async def handle_RSET(self, server, session, envelope):
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        self._done()
        if self.data_reply is not None:
            reply, self.data_reply = self._scripted(self.data_reply)
            return reply
        with self.lock:
            self.messages.append(dict(mail_from=envelope.mail_from,
                                      rcpt_tos=list(envelope.rcpt_tos),
                                      data=envelope.original_content, at=time.monotonic(),
                                      login=getattr(session, "auth_data", None)))
        return "250 2.0.0 Ok: queued"

    def wait(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.05)
        raise AssertionError(f"{count} messages expected at the relay, got "
                             f"{len(self.messages)}")


class Scenario:
    """A topic prefix with its topics, and a worker whose configuration
    sends to a relay."""

    def __init__(self, stack, **config):
        self.stack = stack
        self.prefix = unique("o").lower()
        settings = dict(redis_url=stack.redis_url, topic_prefix=self.prefix,
                        redis_prefix=self.prefix, worker_group=self.prefix,
                        topic_partitions="2", retry_delays="1s,2s",
                        worker_http_listen="127.0.0.1:0", smtp_starttls="no",
                        smtp_connect_timeout="2s", smtp_timeout="20s",
                        **{"kafka.session.timeout.ms": "6000"})
        settings.update(config)
        self.config = stack.write_config(stack.dir / f"{self.prefix}.conf", **settings)
        res = subprocess.run([str(CTL), "-C", str(self.config), "kafka", "init", "--timeout",
                              "60s"], env=clean_env(), capture_output=True, text=True,
                             timeout=90)
        assert res.returncode == 0, res.stdout + res.stderr
        self.producer = Producer({"bootstrap.servers": stack.brokers})
        self.worker = None

    def start(self):
        self.worker = start_worker(self.stack, self.config)
        return self

    def stop(self, sig=signal.SIGTERM):
        code = stop_worker(self.worker, sig)
        if sig == signal.SIGTERM:
            assert code == 0, self.log()[-3000:]

    def log(self):
        return open(self.worker.log_path).read()

    def put(self, rcpts, subject="Hello", body="Hi.\n", mail_from="robot@example.test",
            headers=()):
        """An outbound record as a robot's worker writes it. Returns its
        effect id (also its mr.id here)."""
        effect_id = secrets.token_hex(16)
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = f"Robot <{mail_from or 'robot@example.test'}>"
        msg["To"] = ", ".join(rcpts)
        msg["Subject"] = subject
        msg["Message-ID"] = f"<{effect_id}@example.test>"
        for name, value in headers:
            msg[name] = value
        msg.set_content(body)
        record_headers = [("mr.v", "1"), ("mr.effect_id", effect_id), ("mr.kind", "send"),
                          ("mr.id", effect_id), ("mr.robot", "tester"),
                          ("mr.mail_from", mail_from)]
        record_headers += [("mr.rcpt_to", r) for r in rcpts]
        self.producer.produce(f"{self.prefix}.outbound", key=effect_id, value=msg.as_bytes(),
                              headers=record_headers)
        self.producer.flush(30)
        return effect_id

    def events(self, effect_id, until, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            evs = [json.loads(r.value) for r in read_records(
                self.stack.brokers, f"{self.prefix}.events",
                where=lambda r: r.key == effect_id.encode(), expect=None, timeout=20)]
            if any(e["type"] == until for e in evs) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert any(e["type"] == until for e in evs), (until, evs, self.log()[-3000:])
        return evs

    def dead(self, effect_id):
        [rec] = read_records(self.stack.brokers, f"{self.prefix}.dead",
                             where=lambda r: r.key == effect_id.encode(), timeout=60)
        return rec

    def sent_marker(self, effect_id):
        return self.stack.redis.get(f"{self.prefix}:sent:{effect_id}")
