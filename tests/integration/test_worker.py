"""mailrobot-worker against real Kafka, Redis and an HTTP receiver on
loopback (SPEC §6, §7): signed webhook deliveries, retries through the retry
topics, dead letters and their replay, timeouts, routing precedence and
hot route changes, ordering, the SSRF guard, metrics and health, SIGTERM."""

import json
import time
import urllib.request

import pytest
import redis

from mailrobot_harness import (CTL, REPO, by_queue_id, clean_env, read_records, run_ingest,
                               start_ingestd, start_worker, stop_ingestd, stop_worker, unique)
from webhook_receiver import Receiver, payload, verify_signature

SECRET = "test-secret-0123456789abcdef"


class Directory:
    """Routes and robots written straight into Redis, as docs/redis.md
    (layout v1) describes them — independently of mailrobotctl."""

    def __init__(self, url, prefix="mailrobot"):
        self.r = redis.Redis.from_url(url)
        self.p = prefix

    def robot(self, name, url, **fields):
        doc = {"name": name, "kind": "webhook",
               "webhook": {"url": url, "secret": SECRET, **fields.pop("webhook", {})}, **fields}
        self.r.set(f"{self.p}:robot:{name}", json.dumps(doc))
        self.r.sadd(f"{self.p}:robots", name)
        self.r.incr(f"{self.p}:robots:version")
        return doc

    def route(self, address, robot):
        self.r.set(f"{self.p}:route:{address}", robot)
        self.r.sadd(f"{self.p}:routes", address)
        self.r.incr(f"{self.p}:robots:version")

    def unroute(self, address):
        self.r.delete(f"{self.p}:route:{address}")
        self.r.srem(f"{self.p}:routes", address)
        self.r.incr(f"{self.p}:robots:version")


@pytest.fixture(scope="module")
def env(kafka):
    kafka.start("redis")
    redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    kafka.write_config(redis_url=redis_url, retry_delays="1s,2s", worker_http_listen="127.0.0.1:0",
                       webhook_allow_private="yes", webhook_timeout="5s",
                       **{"kafka.session.timeout.ms": "6000"})
    kafka.kafka_init()  # the retry topics of these retry_delays
    daemon = start_ingestd(kafka)
    worker = start_worker(kafka)
    receiver = Receiver()
    kafka.directory = Directory(redis_url)
    kafka.receiver = receiver
    kafka.worker = worker
    yield kafka
    receiver.close()
    # Tests replace kafka.worker; the one running now must stop cleanly.
    assert stop_worker(kafka.worker) == 0, open(kafka.worker.log_path).read()[-3000:]
    stop_ingestd(daemon)


def send(env, recipient, subject="hello", extra_headers="", body="Hi robot.\n"):
    queue_id = unique()
    msg = (f"From: Alice <alice@example.org>\nTo: {recipient}\nSubject: {subject}\n"
           f"Message-ID: <{queue_id}@example.org>\n{extra_headers}\n{body}").encode()
    res = run_ingest(env.config, [recipient], msg, queue_id=queue_id)
    assert res.returncode == 0, res.stderr
    return queue_id, msg


def record_id(env, queue_id):
    [rec] = read_records(env.brokers, where=by_queue_id(queue_id))
    return rec.h("mr.id")


EVENT_SCHEMA = json.loads((REPO / "schemas" / "event-v1.json").read_text())


def events_for(env, mr_id, expect, timeout=60):
    """The events of one message, each checked against schemas/event-v1.json."""
    import jsonschema
    events = [json.loads(r.value) for r in read_records(
        env.brokers, "mailrobot.events", where=lambda r: r.key == mr_id.encode(), expect=expect,
        timeout=timeout)]
    for event in events:
        jsonschema.validate(event, EVENT_SCHEMA)
    return events


def test_delivers_signed_json(env):
    d, rx = env.directory, env.receiver
    d.robot("hello", rx.url("/ok"))
    d.route("hello@robots.example.test", "hello")
    queue_id, msg = send(env, "hello@robots.example.test", subject="Signed")
    [req] = rx.wait_for(1, "/ok", where=lambda r: queue_id.encode() in r["body"])
    mr_id = record_id(env, queue_id)
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Mailrobot-Delivery"] == mr_id
    assert req["headers"]["Mailrobot-Robot"] == "hello"
    assert req["headers"]["Mailrobot-Attempt"] == "1"
    assert verify_signature(req, SECRET)
    assert not verify_signature(req, SECRET + "x")
    body = payload(req)
    import jsonschema
    jsonschema.validate(body, json.loads((REPO / "schemas" / "webhook-v1.json").read_text()))
    assert body["id"] == mr_id and body["robot"] == "hello"
    assert body["subject"] == "Signed"
    assert body["envelope"]["recipient"] == "hello@robots.example.test"
    types = [e["type"] for e in events_for(env, mr_id, 3)]
    assert types == ["received", "routed", "delivered"]


def actions_path(doc):
    import base64
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return "/actions/" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_webhook_may_answer_with_actions(env):
    """Opt-in "actions": the application's 2xx JSON body asks for a mail and
    state; they go through the same path as an exec robot's actions."""
    from email import policy
    from email.parser import BytesParser
    d, rx = env.directory, env.receiver
    answer = {"actions": [
        {"type": "send", "to": ["desk@example.net"], "subject": "Ticket opened",
         "text": "Ticket T-7 was opened.\n"},
        {"type": "set_state", "key": "last", "value": "T-7"}]}
    path = actions_path(answer)
    d.robot("answering", rx.url(path), webhook={"actions": True})
    d.route("answering@robots.example.test", "answering")
    queue_id, _ = send(env, "answering@robots.example.test", subject="Please open a ticket")
    rx.wait_for(1, path, where=lambda r: queue_id.encode() in r["body"])
    mr_id = record_id(env, queue_id)
    [out] = read_records(env.brokers, "mailrobot.outbound",
                         where=lambda r: r.h("mr.id") == mr_id)
    assert out.h("mr.kind") == "send" and out.h("mr.rcpt_to") == "desk@example.net"
    assert out.h("mr.robot") == "answering"
    mail = BytesParser(policy=policy.default).parsebytes(out.value)
    assert mail["Subject"] == "Ticket opened" and mail["Auto-Submitted"] == "auto-generated"
    assert d.r.get("mailrobot:state:answering:last") == b"T-7"
    assert [e["type"] for e in events_for(env, mr_id, 3)][-1] == "delivered"


def test_a_webhook_without_the_opt_in_ignores_its_answer(env):
    d, rx = env.directory, env.receiver
    path = actions_path({"actions": [{"type": "reject", "reason": "no"}]})
    d.robot("plain", rx.url(path))
    d.route("plain@robots.example.test", "plain")
    queue_id, _ = send(env, "plain@robots.example.test")
    rx.wait_for(1, path, where=lambda r: queue_id.encode() in r["body"])
    mr_id = record_id(env, queue_id)
    assert [e["type"] for e in events_for(env, mr_id, 3)][-1] == "delivered"


def test_a_webhooks_invalid_actions_are_a_dead_letter(env):
    d, rx = env.directory, env.receiver
    path = actions_path(b"<html>OK</html>")
    d.robot("badanswer", rx.url(path), webhook={"actions": True})
    d.route("badanswer@robots.example.test", "badanswer")
    queue_id, _ = send(env, "badanswer@robots.example.test")
    mr_id = record_id(env, queue_id)
    [dead] = read_records(env.brokers, "mailrobot.dead", where=lambda r: r.h("mr.id") == mr_id)
    assert dead.h("mr.error_kind") == "permanent"
    assert dead.h("mr.error").startswith("output: invalid actions: /: ")


def test_raw_format_posts_the_message_itself(env):
    d, rx = env.directory, env.receiver
    d.robot("rawbot", rx.url("/ok?raw"), webhook={"format": "raw"})
    d.route("raw@robots.example.test", "rawbot")
    queue_id, msg = send(env, "raw@robots.example.test")
    [req] = rx.wait_for(1, "/ok?raw", where=lambda r: queue_id.encode() in r["body"])
    assert req["headers"]["Content-Type"] == "message/rfc822"
    [rec] = read_records(env.brokers, where=by_queue_id(queue_id))
    assert req["body"] == rec.value
    assert verify_signature(req, SECRET)
    assert req["headers"]["Mailrobot-Recipient"] == "raw@robots.example.test"
    assert req["headers"]["Mailrobot-Sender"] == "sender@example.org"
    assert req["headers"]["Mailrobot-Extension"] == ""


def test_retry_503_503_200_delivers_on_the_third_attempt(env):
    d, rx = env.directory, env.receiver
    d.robot("flaky", rx.url("/flaky/503,503,200"))
    d.route("flaky@robots.example.test", "flaky")
    queue_id, _ = send(env, "flaky@robots.example.test")
    reqs = rx.wait_for(3, "/flaky/503,503,200", where=lambda r: queue_id.encode() in r["body"])
    assert [r["headers"]["Mailrobot-Attempt"] for r in reqs] == ["1", "2", "3"]
    assert len({r["headers"]["Mailrobot-Delivery"] for r in reqs}) == 1
    # The delays of the retry topics (1 s, 2 s) were kept.
    assert reqs[1]["at"] - reqs[0]["at"] >= 0.9 and reqs[2]["at"] - reqs[1]["at"] >= 1.9
    mr_id = record_id(env, queue_id)
    events = events_for(env, mr_id, 9)
    assert [e["type"] for e in events].count("retried") == 2
    assert events[-1]["type"] == "delivered" and events[-1]["attempt"] == 3
    retried = [e for e in events if e["type"] == "retried"]
    assert retried[0]["retry_topic"] == "mailrobot.retry.1s"
    assert retried[1]["retry_topic"] == "mailrobot.retry.2s"
    assert "HTTP 503: receiver says 503" in retried[0]["error"]


def test_400_dead_letters_and_dlq_replay_delivers(env):
    d, rx = env.directory, env.receiver
    d.robot("strict400", rx.url("/status/400"))
    d.route("reject@robots.example.test", "strict400")
    queue_id, msg = send(env, "reject@robots.example.test")
    rx.wait_for(1, "/status/400", where=lambda r: queue_id.encode() in r["body"])
    [dead] = read_records(env.brokers, "mailrobot.dead", where=by_queue_id(queue_id))
    assert dead.h("mr.error_kind") == "permanent"
    assert dead.h("mr.error").startswith("HTTP 400: receiver says 400")
    assert dead.h("mr.robot") == "strict400" and dead.h("mr.attempt") == "1"
    assert dead.value.endswith(msg)
    # The endpoint is fixed; the operator replays the dead letter.
    d.robot("strict400", rx.url("/ok?fixed"))
    res = subprocess_ctl(env, "dlq", "replay", dead.h("mr.id"))
    assert res.returncode == 0, res.stderr
    [req] = rx.wait_for(1, "/ok?fixed", where=lambda r: queue_id.encode() in r["body"])
    assert req["headers"]["Mailrobot-Delivery"] == dead.h("mr.id")


def subprocess_ctl(env, *args):
    import subprocess
    return subprocess.run([str(CTL), "-C", str(env.config), *args], capture_output=True,
                          text=True, env=clean_env(), timeout=120)


def test_timeout_is_retried(env):
    d, rx = env.directory, env.receiver
    d.robot("sleepy", rx.url("/slow-first/3000"), timeout="1s")
    d.route("sleepy@robots.example.test", "sleepy")
    queue_id, _ = send(env, "sleepy@robots.example.test")
    reqs = rx.wait_for(2, "/slow-first/3000", where=lambda r: queue_id.encode() in r["body"])
    assert [r["headers"]["Mailrobot-Attempt"] for r in reqs] == ["1", "2"]
    mr_id = record_id(env, queue_id)
    events = events_for(env, mr_id, 6)
    [retried] = [e for e in events if e["type"] == "retried"]
    assert "Timeout was reached" in retried["error"]
    assert events[-1]["type"] == "delivered"


def test_routing_precedence_and_hot_changes(env):
    d, rx = env.directory, env.receiver
    for name in ("exact", "base", "domain", "default"):
        d.robot(name, rx.url(f"/ok?{name}"))
    d.route("*", "default")
    d.route("@prec.example.test", "domain")
    d.route("bot@prec.example.test", "base")
    d.route("bot+vip@prec.example.test", "exact")
    cases = [("bot+vip@prec.example.test", "exact", "vip"), ("bot+other@prec.example.test",
                                                              "base", "other"),
             ("Bot@Prec.Example.Test", "base", ""), ("else@prec.example.test", "domain", ""),
             ("who@other.example.test", "default", "")]
    for rcpt, robot, ext in cases:
        queue_id, _ = send(env, rcpt)
        [req] = rx.wait_for(1, f"/ok?{robot}", where=lambda r: queue_id.encode() in r["body"])
        assert payload(req)["envelope"]["extension"] == ext
        assert payload(req)["robot"] == robot
    # A route changed in Redis applies to the next mail, no restart.
    d.route("bot@prec.example.test", "domain")
    queue_id, _ = send(env, "bot@prec.example.test")
    rx.wait_for(1, "/ok?domain", where=lambda r: queue_id.encode() in r["body"])
    d.unroute("*")


def test_no_route_dead_letters_with_reason(env):
    queue_id, _ = send(env, "nobody@unrouted.example.test")
    [dead] = read_records(env.brokers, "mailrobot.dead", where=by_queue_id(queue_id))
    assert dead.h("mr.error_kind") == "no_route"
    events = events_for(env, dead.h("mr.id"), 2)
    assert events[-1]["type"] == "dead" and events[-1]["error_kind"] == "no_route"


def test_one_conversation_in_order_many_in_parallel(env):
    d, rx = env.directory, env.receiver
    d.robot("orderly", rx.url("/sleep/200"), concurrency=8)
    d.route("orderly@robots.example.test", "orderly")
    thread = unique("T")
    for i in range(6):
        send(env, "orderly@robots.example.test", subject=f"{thread} {i}",
             extra_headers=f"References: <{thread}@root>\n")
    for i in range(6):
        send(env, "orderly@robots.example.test", subject=f"{thread} other {i}")
    reqs = rx.wait_for(12, "/sleep/200", where=lambda r: thread.encode() in r["body"])
    ours = [r for r in reqs if b"other" not in r["body"]]
    subjects = [payload(r)["subject"] for r in ours]
    assert subjects == [f"{thread} {i}" for i in range(6)]
    # One at a time: each arrived only after the previous one was answered.
    for a, b in zip(ours, ours[1:]):
        assert a["end"] is not None and b["at"] >= a["end"], (a["at"], a["end"], b["at"])
    # The six other conversations were not held back: some overlapped.
    others = sorted((r for r in reqs if b"other" in r["body"]), key=lambda r: r["at"])
    assert any(b["at"] < a["end"] for a, b in zip(others, others[1:]))


def test_private_destinations_are_refused_unless_allowed(env, tmp_path):
    d, rx = env.directory, env.receiver
    config = env.write_config(tmp_path / "guarded.conf", redis_url=read_key(env, "redis_url"),
                              retry_delays="1s,2s", worker_http_listen="127.0.0.1:0",
                              worker_group="guarded", webhook_allow_private="no",
                              **{"kafka.session.timeout.ms": "6000"})
    stop_worker(env.worker)
    guarded = start_worker(env, config)
    try:
        d.robot("guarded", rx.url("/ok?guarded"))
        d.robot("trusted", rx.url("/ok?trusted"), webhook={"allow_private": True})
        d.route("guarded@robots.example.test", "guarded")
        d.route("trusted@robots.example.test", "trusted")
        queue_id, _ = send(env, "guarded@robots.example.test")
        [dead] = read_records(env.brokers, "mailrobot.dead", where=by_queue_id(queue_id))
        assert "non-public address 127.0.0.1" in dead.h("mr.error")
        assert dead.h("mr.error_kind") == "permanent"
        assert rx.received("/ok?guarded") == []
        queue_id, _ = send(env, "trusted@robots.example.test")
        rx.wait_for(1, "/ok?trusted", where=lambda r: queue_id.encode() in r["body"])
    finally:
        assert stop_worker(guarded) == 0
        env.worker = start_worker(env)


def read_key(env, key):
    from mailrobot_harness import read_config_key
    return read_config_key(env.config, key)


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_metrics_and_health(env):
    port = env.worker.http_port
    deadline = time.monotonic() + 15
    while healthz(port) != (200, b"ok\n"):  # a worker just started may still be connecting
        assert time.monotonic() < deadline, healthz(port)
        time.sleep(0.2)
    d, rx = env.directory, env.receiver
    d.robot("counted", rx.url("/ok?counted"))
    d.route("counted@robots.example.test", "counted")
    queue_id, _ = send(env, "counted@robots.example.test")
    rx.wait_for(1, "/ok?counted", where=lambda r: queue_id.encode() in r["body"])
    deadline = time.monotonic() + 10
    while True:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        if 'mailrobot_deliveries_total{robot="counted",outcome="delivered"} 1' in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    for name in ("mailrobot_records_received_total", "mailrobot_in_flight",
                 "mailrobot_consumer_lag", "mailrobot_delivery_duration_seconds_bucket"):
        assert name in text
    env.stop("redis")
    try:
        deadline = time.monotonic() + 20
        while healthz(port) != (503, b"redis not connected\n"):
            assert time.monotonic() < deadline, healthz(port)
            time.sleep(0.2)
    finally:
        env.start("redis")
    deadline = time.monotonic() + 20
    while healthz(port) != (200, b"ok\n"):
        assert time.monotonic() < deadline, healthz(port)
        time.sleep(0.2)


def test_the_documented_receiver_example_works(env, tmp_path):
    """docs/robots/examples/webhook_receiver.py: accepts the worker's signed
    delivery, answers a duplicate without handling it twice, refuses a
    forged signature."""
    import hashlib
    import hmac
    import subprocess
    from mailrobot_harness import free_port
    port = free_port()
    example = REPO / "docs" / "robots" / "examples" / "webhook_receiver.py"
    proc = subprocess.Popen(["python3", str(example), str(port)], stdout=subprocess.PIPE,
                            env={**clean_env(), "WEBHOOK_SECRET": SECRET,
                                 "RECEIVER_DB": str(tmp_path / "seen.sqlite")})
    try:
        assert proc.stdout.readline().startswith(b"listening")
        env.directory.robot("example", f"http://127.0.0.1:{port}/mail")
        env.directory.route("example@robots.example.test", "example")
        queue_id, _ = send(env, "example@robots.example.test", subject="Docs example")
        line = proc.stdout.readline().decode()
        assert "alice@example.org -> example@robots.example.test: 'Docs example'" in line

        def post(body, secret, delivery):
            stamp = str(int(time.time()))
            sig = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/mail", data=body, method="POST",
                headers={"Mailrobot-Signature": f"t={stamp},v1={sig.hexdigest()}",
                         "Mailrobot-Delivery": delivery, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        mail = json.dumps({"received_at": "now", "from": [{"name": "", "address": "x@y"}],
                           "envelope": {"recipient": "r@z", "sender": "x@y"},
                           "subject": "manual", "attachments": []}).encode()
        assert post(mail, SECRET, "manual-1") == (200, b"ok\n")
        assert post(mail, SECRET, "manual-1") == (200, b"duplicate, already handled\n")
        assert post(mail, "wrong-secret-0123456789", "manual-2")[0] == 401
    finally:
        proc.kill()
        proc.wait()


def test_ordered_false_runs_a_conversation_in_parallel(env):
    d, rx = env.directory, env.receiver
    d.robot("loose", rx.url("/sleep/300?loose"), ordered=False, concurrency=8)
    d.route("loose@robots.example.test", "loose")
    thread = unique("L")
    for i in range(4):
        send(env, "loose@robots.example.test", subject=f"{thread} {i}",
             extra_headers=f"References: <{thread}@root>\n")
    reqs = sorted(rx.wait_for(4, "/sleep/300?loose", where=lambda r: thread.encode() in r["body"]),
                  key=lambda r: r["at"])
    assert any(b["at"] < a["end"] for a, b in zip(reqs, reqs[1:])), "no two overlapped"


def test_strict_order_holds_the_conversation_through_retries(env):
    """"ordered": "strict": the second mail of a conversation waits until
    the first, failing once, has been delivered by its retry."""
    d, rx = env.directory, env.receiver
    d.robot("strict", rx.url("/flaky/503,200"), ordered="strict")
    d.route("strict@robots.example.test", "strict")
    thread = unique("S")
    for i in range(2):
        send(env, "strict@robots.example.test", subject=f"{thread} {i}",
             extra_headers=f"References: <{thread}@root>\n")
    reqs = rx.wait_for(4, "/flaky/503,200", where=lambda r: thread.encode() in r["body"])
    got = [(payload(r)["subject"], r["headers"]["Mailrobot-Attempt"]) for r in reqs]
    assert got == [(f"{thread} 0", "1"), (f"{thread} 0", "2"), (f"{thread} 1", "1"),
                   (f"{thread} 1", "2")]


def test_sigterm_finishes_in_flight_work_and_commits(env):
    """SIGTERM while deliveries are in flight: the worker finishes them,
    commits and exits 0; a new worker does not deliver them again."""
    d, rx = env.directory, env.receiver
    d.robot("drain", rx.url("/sleep/500?drain"), concurrency=16)
    d.route("drain@robots.example.test", "drain")
    tag = unique("D")
    for i in range(10):
        send(env, "drain@robots.example.test", subject=f"{tag} {i}")
    rx.wait_for(1, "/sleep/500?drain", where=lambda r: tag.encode() in r["body"])
    assert stop_worker(env.worker) == 0
    log = open(env.worker.log_path).read()
    assert '"msg":"worker stopped","unfinished":"0"' in log
    delivered = rx.received("/sleep/500?drain")
    env.worker = start_worker(env)
    rx.wait_for(10, "/sleep/500?drain", where=lambda r: tag.encode() in r["body"], timeout=60)
    time.sleep(3)  # time for a wrongly uncommitted record to come round again
    ours = [r for r in rx.received("/sleep/500?drain") if tag.encode() in r["body"]]
    assert len(ours) == 10, [payload(r)["subject"] for r in ours]
    assert len({r["headers"]["Mailrobot-Delivery"] for r in ours}) == 10
    assert len([r for r in delivered if tag.encode() in r["body"]]) >= 1


def test_retries_exhausted_dead_letter_and_waiting_retries_block_nothing(env):
    d, rx = env.directory, env.receiver
    d.robot("down", rx.url("/status/503?down"))
    d.robot("up", rx.url("/ok?up"))
    d.route("down@robots.example.test", "down")
    d.route("up@robots.example.test", "up")
    queue_id, _ = send(env, "down@robots.example.test")
    [first] = rx.wait_for(1, "/status/503?down", where=lambda r: queue_id.encode() in r["body"])
    # While that record waits in retry.1s, new mail is not held up.
    other, _ = send(env, "up@robots.example.test")
    [quick] = rx.wait_for(1, "/ok?up", where=lambda r: other.encode() in r["body"])
    reqs = rx.wait_for(3, "/status/503?down", where=lambda r: queue_id.encode() in r["body"])
    assert quick["at"] < reqs[1]["at"]
    [dead] = read_records(env.brokers, "mailrobot.dead", where=by_queue_id(queue_id))
    assert dead.h("mr.error_kind") == "exhausted"
    assert dead.h("mr.attempt") == "3"
    assert dead.h("mr.error").startswith("3 attempts failed; the last: HTTP 503")
