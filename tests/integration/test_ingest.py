"""mailrobot-ingest against a real Kafka broker (SPEC §3): byte-identical
records, one per recipient, headers, ids and keys, limits, and the exit
status contract Postfix relies on. Every test runs twice: with
mailrobot-ingestd (the daemon path) and without it (the --direct path)."""

import contextlib
import os
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest

from mailrobot_harness import (INGEST, SilentServer, by_queue_id, clean_env,
                               expected_record_id, free_port, read_records, run_ingest,
                               start_ingestd, stop_ingestd, unique)


@pytest.fixture(scope="module")
def daemon(kafka):
    proc = start_ingestd(kafka)
    yield proc
    assert stop_ingestd(proc) == 0


@pytest.fixture(scope="module", params=["daemon", "direct"])
def config(request, kafka, daemon):
    """The config the ingest runs with: the daemon's socket, or none."""
    if request.param == "daemon":
        return kafka.config
    return kafka.write_config(kafka.dir / "direct.conf", ingestd_socket="")


@contextlib.contextmanager
def variant(kafka, config, tmp_path, **keys):
    """A config with keys changed. On the daemon path the publishing side
    reads the daemon's config, so a daemon with the same config runs on a
    socket of its own for the duration."""
    name = "-".join(keys).replace("_", "")
    if config != kafka.config:
        yield kafka.write_config(tmp_path / f"{name}.conf", ingestd_socket="", **keys)
        return
    path = kafka.write_config(tmp_path / f"{name}.conf",
                              ingestd_socket=str(tmp_path / f"{name}.sock"), **keys)
    daemon = start_ingestd(kafka, path)
    try:
        yield path
    finally:
        assert stop_ingestd(daemon) == 0


def publish(config, message, recipients=("bot@robots.example.test",), **kw):
    queue_id = kw.pop("queue_id", None) or unique()
    res = run_ingest(config, list(recipients), message, queue_id=queue_id, **kw)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b"" and res.stderr == b"", "success must print nothing"
    return queue_id


BODIES = {
    "lf": b"From: a@example.org\nSubject: lf\n\nline one\nline two\n",
    "crlf": b"From: a@example.org\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n",
    "8bit": "From: a@example.org\nSubject: =?utf-8?q?caf=C3=A9?=\n\nCaf\u00e9 \u00fcber "
            "\u65e5\u672c\n".encode() + bytes(range(0x80, 0x100)) + b"\n",
    "binary_nul": b"Subject: nul\n\n" + bytes(range(256)) * 4 + b"\x00\x00end",
    "no_trailing_newline": b"Subject: no newline\n\nthe last line has no end",
    "empty": b"",
    "bare_cr_and_long_line": b"Subject: x\r\n\r\na\rb" + b"y" * 100000 + b"\n",
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_value_is_byte_identical(kafka, config, case):
    queue_id = publish(config, BODIES[case])
    [rec] = read_records(kafka.brokers, where=by_queue_id(queue_id))
    assert rec.value == BODIES[case]


def test_20_mib_message_round_trips(kafka, config):
    message = b"Subject: big\n\n" + os.urandom(20 * 1024 * 1024)
    queue_id = publish(config, message)
    [rec] = read_records(kafka.brokers, where=by_queue_id(queue_id))
    assert len(rec.value) == len(message)
    assert rec.value == message


def test_one_record_per_recipient_with_envelope_headers(kafka, config):
    message = (b"Message-ID: <own@example.org>\nIn-Reply-To: <parent@example.org>\n"
               b"References: <root@example.org> <parent@example.org>\nSubject: hi\n\nbody\n")
    recipients = ["Bot@Robots.Example.Test", "other@robots.example.test", "third@x.test"]
    originals = ["Bot@Robots.Example.Test", "alias@robots.example.test", "third@x.test"]
    queue_id = unique()
    before = datetime.now(timezone.utc)
    res = run_ingest(config, recipients, message, sender="alice@example.org",
                     queue_id=queue_id,
                     extra_args=["-c", "192.0.2.7", "-h", "mx.example.org", "-s", "alice",
                                 "-o", *originals])
    assert res.returncode == 0, res.stderr
    records = read_records(kafka.brokers, where=by_queue_id(queue_id), expect=3)
    assert len(records) == 3
    by_rcpt = {r.h("mr.recipient"): r for r in records}
    assert sorted(by_rcpt) == sorted(recipients)
    for rcpt, orig in zip(recipients, originals):
        r = by_rcpt[rcpt]
        assert r.value == message
        assert r.h("mr.v") == "1"
        assert r.h("mr.sender") == "alice@example.org"
        assert r.h("mr.original_recipient") == orig
        assert r.h("mr.queue_id") == queue_id
        assert r.h("mr.client_address") == "192.0.2.7"
        assert r.h("mr.helo") == "mx.example.org"
        assert r.h("mr.sasl_username") == "alice"
        assert r.h("mr.id") == expected_record_id(queue_id, rcpt, message)
        # Default partition_by = thread: recipient + conversation root.
        assert r.key == f"{rcpt.lower()} root@example.org".encode()
        received = datetime.strptime(r.h("mr.received_at"), "%Y-%m-%dT%H:%M:%S.%fZ")
        received = received.replace(tzinfo=timezone.utc)
        assert before.timestamp() - 1 <= received.timestamp() <= time.time() + 1
    assert len({r.h("mr.id") for r in records}) == 3


def test_null_sender_and_missing_message_id(kafka, config):
    message = b"Subject: bounce\n\nno message id here\n"
    queue_id = publish(config, message, sender="")
    [rec] = read_records(kafka.brokers, where=by_queue_id(queue_id))
    assert rec.h("mr.sender") == ""
    # No id in the message: the key falls back to the record's own id.
    assert rec.key == f"bot@robots.example.test {rec.h('mr.id')}".encode()


def test_thread_keys_keep_a_conversation_together_and_spread_an_address(kafka, config):
    address = "busy@robots.example.test"
    batch = unique("T")
    for i in range(40):
        publish(config, f"Message-ID: <{batch}-{i}@x>\nSubject: {i}\n\nb\n".encode(),
                recipients=[address], queue_id=f"{batch}R{i}")
        publish(config, f"Message-ID: <{batch}-{i}-reply@x>\nIn-Reply-To: <{batch}-{i}@x>\n"
                        f"References: <{batch}-{i}@x>\n\nreply\n".encode(),
                recipients=[address], queue_id=f"{batch}A{i}")
    records = read_records(kafka.brokers, expect=80,
                           where=lambda r: r.h("mr.queue_id").startswith(batch))
    assert len(records) == 80
    partition = {r.h("mr.queue_id"): r.partition for r in records}
    for i in range(40):
        assert partition[f"{batch}R{i}"] == partition[f"{batch}A{i}"]
    assert len(set(partition.values())) >= 6, "one address must spread over partitions"


@pytest.mark.parametrize("mode", ["recipient", "none"])
def test_partition_by_other_modes(kafka, config, mode, tmp_path):
    with variant(kafka, config, tmp_path, partition_by=mode) as path:
        queue_id = publish(path, b"Message-ID: <m@x>\n\nb\n", recipients=["Mixed@Case.Test"])
    [rec] = read_records(kafka.brokers, where=by_queue_id(queue_id))
    expected = "mixed@case.test" if mode == "recipient" else rec.h("mr.id")
    assert rec.key == expected.encode()


def test_envelope_from_local8_environment(kafka, config):
    """As an /etc/aliases pipe ("|mailrobot-ingest"), local(8) passes the
    envelope in the environment, not the command line."""
    message = b"Delivered-To: robot@host.example\nSubject: alias\n\nbody\n"
    queue_id = unique()
    env = clean_env(RECIPIENT="robot@host.example", SENDER="bob@example.net",
                    ORIGINAL_RECIPIENT="Robot@Host.Example", CLIENT_ADDRESS="198.51.100.2",
                    CLIENT_HELO="mail.example.net", SASL_USERNAME="", LOCAL="robot",
                    DOMAIN="host.example", EXTENSION="", SHELL="/bin/sh", HOME="/",
                    USER="nobody", LOGNAME="nobody")
    res = subprocess.run([str(INGEST), "-C", str(config), "-q", queue_id], input=message,
                         env=env, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    [rec] = read_records(kafka.brokers, where=by_queue_id(queue_id))
    assert rec.value == message
    assert rec.h("mr.recipient") == "robot@host.example"
    assert rec.h("mr.original_recipient") == "Robot@Host.Example"
    assert rec.h("mr.sender") == "bob@example.net"
    assert rec.h("mr.client_address") == "198.51.100.2"
    assert rec.h("mr.helo") == "mail.example.net"


def test_oversize_bounces_with_534_and_publishes_nothing(kafka, config, tmp_path):
    at_limit = b"Subject: fits\n\n" + b"x" * (65536 - 15)
    assert len(at_limit) == 65536
    queue_id = unique()
    with variant(kafka, config, tmp_path, max_message_bytes="64k") as path:
        publish(path, at_limit)
        res = run_ingest(path, ["bot@robots.example.test"], at_limit + b"y", queue_id=queue_id)
    assert res.returncode == 65
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("5.3.4 message too big"), lines
    assert res.stdout == b""
    assert read_records(kafka.brokers, where=by_queue_id(queue_id), expect=None,
                        timeout=10) == []


def one_status_line(res, code):
    lines = res.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(code + " "), lines
    assert res.stdout == b""
    return lines[0]


def test_bad_configuration_defers_never_bounces(kafka, config, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text(config.read_text() + "partition_by = tread\n")
    res = run_ingest(bad, ["bot@robots.example.test"], b"Subject: x\n\nb\n")
    assert res.returncode == 75
    line = one_status_line(res, "4.3.5")
    lineno = len(config.read_text().splitlines()) + 1
    assert f"{bad}:{lineno}: key 'partition_by': bad value 'tread'" in line

    res = run_ingest(tmp_path / "missing.conf", ["bot@robots.example.test"], b"x")
    assert res.returncode == 75
    assert "missing.conf: cannot open" in one_status_line(res, "4.3.5")

    res = run_ingest(config, ["bot@robots.example.test"], b"x",
                     env=clean_env(MAILROBOT_MAX_MESAGE_BYTES="1M"))
    assert res.returncode == 75
    assert "MAILROBOT_MAX_MESAGE_BYTES: unknown setting" in one_status_line(res, "4.3.5")


def test_bad_arguments_defer_never_bounce(config):
    for argv in (["-f", "s@x"], ["-x", "y", "--", "r@x"], ["--", "r@x"], ["-q"]):
        res = subprocess.run([str(INGEST), "-C", str(config), *argv], input=b"x",
                             capture_output=True, env=clean_env(), timeout=30)
        assert res.returncode == 75, argv
        assert "bad arguments" in one_status_line(res, "4.3.5")


def test_dead_broker_defers_within_the_time_limit(kafka, config, tmp_path):
    """No broker at all (connection refused): 75 and one 4.4.1 line, within
    ingest_time_limit, whatever the path."""
    with variant(kafka, config, tmp_path, kafka_brokers=f"127.0.0.1:{free_port()}",
                 ingest_time_limit="2s") as path:
        started = time.monotonic()
        res = run_ingest(path, ["bot@robots.example.test"], b"Subject: x\n\nb\n")
        elapsed = time.monotonic() - started
    assert res.returncode == 75
    line = one_status_line(res, "4.4.1")
    assert "Kafka did not take the message" in line
    assert re.search(r"Connect to ipv4#127\.0\.0\.1:\d+ failed: Connection refused", line), line
    # Bounded by the configured limit (2 s) plus process and daemon overhead.
    assert elapsed < 2 + 8, elapsed


def test_silent_broker_defers_within_the_time_limit(kafka, config, tmp_path):
    """A broker that accepts connections and never answers."""
    silent = SilentServer()
    try:
        with variant(kafka, config, tmp_path, kafka_brokers=f"127.0.0.1:{silent.port}",
                     ingest_time_limit="2s") as path:
            started = time.monotonic()
            res = run_ingest(path, ["bot@robots.example.test"], b"Subject: x\n\nb\n")
            elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert res.returncode == 75
    one_status_line(res, "4.4.1")
    assert elapsed < 2 + 8, elapsed


def test_missing_topic_defers(kafka, config, tmp_path):
    with variant(kafka, config, tmp_path, topic_prefix="nosuchprefix",
                 ingest_time_limit="4s") as path:
        res = run_ingest(path, ["bot@robots.example.test"], b"Subject: x\n\nb\n")
    assert res.returncode == 75
    line = one_status_line(res, "4.4.1")
    assert ("topic nosuchprefix.inbound does not exist (create the topics with "
            "'mailrobotctl kafka init')") in line, line
