"""The outbound sender (SPEC §8, docs/outbound.md) against real relays on
loopback: a scriptable aiosmtpd relay for AUTH and the failure matrix
(421/451 retried, 550 and a wrong password dead-lettered, a relay that is
down retried until it is back), concurrency, rate and connection reuse,
and the crash test (SIGKILL mid-batch: every mail arrives, none twice once
the relay's 250 was recorded).

Each scenario gets its own topic prefix, Redis prefix and worker (with the
configuration under test), so that what one leaves behind cannot reach
another. Records are put on <prefix>.outbound with confluent-kafka, as a
robot's worker would; what arrives is parsed with Python's email package."""

import json
import secrets
import signal
import subprocess
import time

import pytest
import redis

from mailrobot_harness import CTL, WORKER, clean_env, free_port, read_records
from outbound_harness import Relay, Scenario, make_certificates, parse


@pytest.fixture(scope="module")
def env(kafka):
    kafka.start("redis")
    kafka.redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    kafka.redis = redis.Redis.from_url(kafka.redis_url)
    yield kafka


@pytest.fixture
def relay():
    r = Relay()
    yield r
    r.close()


def test_mail_is_sent_once_and_marked(env, relay):
    s = Scenario(env, smtp_relay=relay.url).start()
    try:
        effect = s.put(["bob@example.org", "carol@example.org"],
                       subject="Grüße aus dem Büro", mail_from="")
        evs = s.events(effect, "sent")
        [m] = relay.wait(1)
        assert m["mail_from"] == "<>"
        assert sorted(m["rcpt_tos"]) == ["bob@example.org", "carol@example.org"]
        msg = parse(m["data"])
        assert msg["Subject"] == "Grüße aus dem Büro"
        assert msg["Message-ID"] == f"<{effect}@example.test>"
        assert b"\r\n" in m["data"] and b"\n" not in m["data"].replace(b"\r\n", b"")
        sent = [e for e in evs if e["type"] == "sent"][0]
        assert sent["effect_id"] == effect and sent["smtp_status"] == 250
        assert sent["robot"] == "tester"
        assert json.loads(s.sent_marker(effect))["status"] == 250
        tail = subprocess.run([str(CTL), "-C", str(s.config), "tail", "--from", "beginning",
                               "--count", "2"], capture_output=True, text=True,
                              env=clean_env(), timeout=60).stdout
        [line] = [ln for ln in tail.splitlines() if " sent " in ln]
        assert "tester" in line and " 250 " in line and f"(mail {effect})" in line, tail

        # The same record again (a replay, a rebalance): not sent twice.
        s.producer.produce(f"{s.prefix}.outbound", key=effect, value=m["data"],
                           headers=[("mr.v", "1"), ("mr.effect_id", effect),
                                    ("mr.id", effect), ("mr.mail_from", ""),
                                    ("mr.rcpt_to", "bob@example.org")])
        s.producer.flush(30)
        evs = s.events(effect, "skipped")
        assert [e["error"] for e in evs if e["type"] == "skipped"] == ["already sent"]
        time.sleep(1)
        assert len(relay.messages) == 1
    finally:
        s.stop()


def test_auth_plain_and_login(env):
    relay = Relay(login="robot", password="s3cret-pass")
    try:
        for mechanism in ("plain", "login"):
            s = Scenario(env, smtp_relay=relay.url, smtp_username="robot",
                         smtp_password="s3cret-pass", smtp_auth=mechanism).start()
            try:
                effect = s.put(["bob@example.org"])
                s.events(effect, "sent")
                assert relay.logins[-1] == (mechanism.upper(), "robot", True)
                assert "s3cret-pass" not in s.log()
            finally:
                s.stop()
        assert len(relay.messages) == 2
    finally:
        relay.close()


def test_wrong_password_is_dead_lettered_with_the_reason(env):
    relay = Relay(login="robot", password="right")
    s = Scenario(env, smtp_relay=relay.url, smtp_username="robot",
                 smtp_password="wrong").start()
    try:
        effect = s.put(["bob@example.org"])
        evs = s.events(effect, "dead")
        dead = s.dead(effect)
        error = dead.h("mr.error")
        assert "535" in error and "smtp_username/smtp_password refused" in error, error
        assert dead.h("mr.error_kind") == "permanent"
        assert not any(e["type"] == "retried" for e in evs)
        assert relay.messages == [] and s.sent_marker(effect) is None
    finally:
        s.stop()
        relay.close()


@pytest.mark.parametrize("where,reply", [
    ("mail", "421 4.3.2 Service shutting down, closing channel"),
    ("data", "451 4.3.0 Temporary lookup failure"),
])
def test_temporary_replies_are_retried_then_sent(env, relay, where, reply):
    setattr(relay, f"{where}_reply", (reply, 1))
    s = Scenario(env, smtp_relay=relay.url).start()
    try:
        effect = s.put(["bob@example.org"])
        evs = s.events(effect, "sent")
        [retried] = [e for e in evs if e["type"] == "retried"]
        assert reply.split()[0] in retried["error"] and retried["smtp_status"] == int(reply[:3])
        assert len(relay.wait(1)) == 1
        time.sleep(1)
        assert len(relay.messages) == 1
    finally:
        s.stop()


def test_refused_recipient_is_dead_lettered(env, relay):
    relay.rcpt_replies["nobody@example.org"] = \
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    s = Scenario(env, smtp_relay=relay.url).start()
    try:
        effect = s.put(["nobody@example.org"])
        evs = s.events(effect, "dead")
        assert not any(e["type"] == "retried" for e in evs)
        dead = s.dead(effect)
        assert "550 5.1.1 <nobody@example.org>: Recipient address rejected" in dead.h("mr.error")
        assert dead.value.startswith(b"From: Robot")   # the mail itself, for a replay
        assert relay.messages == []

        # The address is fixed at the relay; the operator replays the dead letter.
        del relay.rcpt_replies["nobody@example.org"]
        listed = subprocess.run([str(CTL), "-C", str(s.config), "dlq", "list"],
                                capture_output=True, text=True, env=clean_env(), timeout=60)
        assert effect in listed.stdout and "550 5.1.1" in listed.stdout, listed
        res = subprocess.run([str(CTL), "-C", str(s.config), "dlq", "replay", "--all"],
                             capture_output=True, text=True, env=clean_env(), timeout=60)
        assert res.returncode == 0, res.stderr
        s.events(effect, "sent")
        [m] = relay.wait(1)
        assert m["rcpt_tos"] == ["nobody@example.org"]
    finally:
        s.stop()


def test_relay_down_is_retried_until_it_is_back(env):
    relay_port = free_port()   # the relay is started later
    s = Scenario(env, smtp_relay=f"smtp://127.0.0.1:{relay_port}",
                 retry_delays="1s,2s,4s,8s").start()
    relay = None
    try:
        effect = s.put(["bob@example.org"])
        evs = s.events(effect, "retried")
        assert "Couldn't connect" in evs[-1]["error"] or "connect" in evs[-1]["error"].lower()
        relay = Relay(port=relay_port)
        s.events(effect, "sent", timeout=60)
        assert len(relay.wait(1)) == 1
    finally:
        s.stop()
        if relay:
            relay.close()


def test_bad_outbound_records_are_dead_lettered(env, relay):
    s = Scenario(env, smtp_relay=relay.url).start()
    try:
        effect = secrets.token_hex(16)
        s.producer.produce(f"{s.prefix}.outbound", key=effect, value=b"Subject: x\r\n\r\nx\r\n",
                           headers=[("mr.v", "1"), ("mr.effect_id", effect), ("mr.id", effect),
                                    ("mr.mail_from", ""),
                                    ("mr.rcpt_to", "bob@example.org>\r\nRSET")])
        s.producer.flush(30)
        s.events(effect, "dead")
        dead = s.dead(effect)
        assert dead.h("mr.error_kind") == "bad_record"
        assert "mr.rcpt_to 0 is not an address" in dead.h("mr.error")
        assert relay.messages == []
    finally:
        s.stop()


def test_concurrency_rate_and_connection_reuse(env, relay):
    relay.data_delay = 0.3
    s = Scenario(env, smtp_relay=relay.url, smtp_concurrency="2").start()
    try:
        effects = [s.put([f"u{i}@example.org"]) for i in range(8)]
        relay.wait(8)
        assert relay.most_busy == 2, relay.most_busy
        # Two connections, each reused for the next message.
        assert relay.connections == 2, relay.connections
        assert all(s.sent_marker(e) for e in effects)
    finally:
        s.stop()

    relay.messages.clear()
    relay.data_delay, relay.most_busy, relay.connections = 0, 0, 0
    s = Scenario(env, smtp_relay=relay.url, smtp_concurrency="4", smtp_rate_limit="5",
                 smtp_reuse_connections="no").start()
    try:
        for i in range(8):
            s.put([f"v{i}@example.org"])
        got = relay.wait(8)
        # 5 per second with a burst of one: 8 messages span at least 7/5 s.
        span = got[-1]["at"] - got[0]["at"]
        assert span >= 1.2, span
        assert relay.connections == 8   # a new connection per message
    finally:
        s.stop()


def test_crash_between_messages_loses_nothing_and_repeats_no_confirmed_send(env, relay):
    relay.data_delay = 0.1
    s = Scenario(env, smtp_relay=relay.url, smtp_concurrency="2").start()
    effects = [s.put([f"c{i}@example.org"]) for i in range(40)]
    relay.wait(12)
    s.stop(signal.SIGKILL)
    confirmed = {e for e in effects if s.sent_marker(e)}
    assert 0 < len(confirmed) < 40
    s.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ids = [parse(m["data"])["Message-ID"].strip("<>").split("@")[0]
                   for m in relay.messages]
            if set(ids) >= set(effects):
                break
            time.sleep(0.2)
        assert set(ids) >= set(effects), len(set(ids))
        for e in confirmed:
            assert ids.count(e) == 1, e
        # Sent twice at most: those in flight (smtp_concurrency) at the kill.
        assert len(ids) - len(set(ids)) <= 2
        assert all(s.sent_marker(e) for e in effects)
    finally:
        s.stop()


def test_a_worker_without_a_relay_does_not_consume_outbound(env):
    s = Scenario(env).start()
    try:
        assert "smtp_relay is empty" in s.log()
        effect = s.put(["bob@example.org"])
        time.sleep(2)
        assert not read_records(env.brokers, f"{s.prefix}.events",
                                where=lambda r: r.key == effect.encode(), expect=None,
                                timeout=10)
    finally:
        s.stop()


def test_bad_relay_configuration_stops_the_worker_with_a_clear_error(env):
    s = Scenario(env, smtp_relay="http://127.0.0.1:25")
    res = subprocess.run([str(WORKER), "-C", str(s.config)], capture_output=True, text=True,
                         env=clean_env(), timeout=60)
    assert res.returncode != 0
    assert "smtp_relay = http://127.0.0.1:25: not smtp://host[:port]" in res.stderr


def test_dkim_signature_verifies_independently(env, relay, tmp_path):
    import base64

    import dkim

    key = tmp_path / "s1.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True, capture_output=True)
    public = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                            check=True, capture_output=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name, timeout=5):
        return record if name == b"s1._domainkey.example.test." else None

    s = Scenario(env, smtp_relay=relay.url, dkim_keys=f"example.test:s1:{key}").start()
    try:
        signed = s.put(["bob@example.org"], subject="Signiert: Grüße",
                       mail_from="robot@example.test")
        unsigned = s.put(["bob@example.org"], mail_from="robot@elsewhere.test")
        s.events(signed, "sent")
        s.events(unsigned, "sent")
        by_id = {parse(m["data"])["Message-ID"].strip("<>").split("@")[0]: m["data"]
                 for m in relay.wait(2)}
        assert by_id[signed].startswith(b"DKIM-Signature:")
        assert dkim.verify(by_id[signed], dnsfunc=dns)
        assert not dkim.verify(by_id[signed].replace(b"Hi.", b"Hi!"), dnsfunc=dns)
        assert b"DKIM-Signature" not in by_id[unsigned]
    finally:
        s.stop()


def test_smtps_relay_with_the_test_ca(env, tmp_path):
    import ssl

    make_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    relay = Relay(ssl_context=context)
    s = Scenario(env, smtp_relay=relay.url, smtp_ca_file=str(tmp_path / "ca.pem")).start()
    try:
        assert relay.url.startswith("smtps://")
        effect = s.put(["bob@example.org"], subject="implicit TLS")
        s.events(effect, "sent")
        assert parse(relay.wait(1)[0]["data"])["Subject"] == "implicit TLS"
    finally:
        s.stop()
        relay.close()


def test_long_srs_addresses_pass_unchanged(env, relay):
    # SRS addresses have local parts longer than RFC 5321's 64 bytes.
    rcpt = "SRS1=AbCd=fwd.example==" + "x" * 150 + "=Q4=example.org=carol@fwd.example.test"
    mail_from = "SRS0=WxYz=Q4=" + "y" * 200 + ".example.org=dave@fwd.example.test"
    s = Scenario(env, smtp_relay=relay.url).start()
    try:
        effect = s.put([rcpt], mail_from=mail_from)
        s.events(effect, "sent")
        [m] = relay.wait(1)
        assert m["rcpt_tos"] == [rcpt] and m["mail_from"] == mail_from
    finally:
        s.stop()


def test_a_small_in_flight_limit_loses_and_repeats_nothing(env, relay):
    # worker_in_flight_limit 4: the consumer holds its partitions again and
    # again; what it still returns is dropped and fetched again after a
    # seek on release. Every mail arrives once.
    relay.data_delay = 0.02
    s = Scenario(env, smtp_relay=relay.url, worker_in_flight_limit="4",
                 smtp_concurrency="2").start()
    try:
        effects = [s.put([f"h{i}@example.org"]) for i in range(80)]
        got = relay.wait(80, timeout=120)
        time.sleep(1)
        ids = [parse(m["data"])["Message-ID"].strip("<>").split("@")[0] for m in relay.messages]
        assert sorted(ids) == sorted(effects), (len(ids), len(set(ids)))
        assert len(got) == 80
    finally:
        s.stop()
