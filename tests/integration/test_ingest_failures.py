"""The ingest when things break (SPEC §3, §10): a broker that goes away and
comes back, a daemon that is killed, stopped, flooded or fed garbage. Mail
is deferred (exit 75) or published, never lost, and a retry of the same
delivery carries the same mr.id."""

import concurrent.futures
import signal
import socket
import struct
import time

import pytest

from mailrobot_harness import (SilentServer, by_queue_id, expected_record_id, read_records,
                               run_ingest, start_ingestd, stop_ingestd, unique)


@pytest.fixture(scope="module")
def daemon_config(kafka):
    return kafka.write_config(ingest_time_limit="3s")


@pytest.fixture(scope="module")
def direct_config(kafka):
    return kafka.write_config(kafka.dir / "direct.conf", ingestd_socket="",
                              ingest_time_limit="3s")


@pytest.mark.parametrize("path", ["daemon", "direct"])
def test_broker_down_defers_then_retry_succeeds_with_same_id(kafka, daemon_config,
                                                             direct_config, path):
    config = daemon_config if path == "daemon" else direct_config
    daemon = start_ingestd(kafka, daemon_config) if path == "daemon" else None
    message = b"Message-ID: <retry@x>\nSubject: retry\n\nbody\n"
    queue_id = unique()
    try:
        kafka.stop("kafka")
        res = run_ingest(config, ["bot@robots.example.test"], message, queue_id=queue_id)
        assert res.returncode == 75
        [line] = res.stderr.decode().splitlines()
        assert line.startswith("4.4.1 ") and "Connection refused" in line, line

        kafka.start("kafka")
        # Postfix retries the same delivery; and once more, as if the first
        # acknowledgement had been lost on the way back.
        for _ in range(2):
            res = run_ingest(config, ["bot@robots.example.test"], message, queue_id=queue_id)
            assert res.returncode == 0, res.stderr
    finally:
        kafka.start("kafka")
        if daemon:
            assert stop_ingestd(daemon) == 0
    records = read_records(kafka.brokers, where=by_queue_id(queue_id), expect=2)
    assert len(records) == 2
    expected = expected_record_id(queue_id, "bot@robots.example.test", message)
    assert [r.h("mr.id") for r in records] == [expected, expected]
    assert records[0].partition == records[1].partition


def test_killed_daemon_falls_back_to_direct_publishing(kafka, daemon_config):
    daemon = start_ingestd(kafka, daemon_config)
    stop_ingestd(daemon, signal.SIGKILL)
    assert kafka.socket.exists(), "a killed daemon leaves its socket file behind"
    queue_id = unique()
    res = run_ingest(daemon_config, ["bot@robots.example.test"], b"Subject: x\n\nb\n",
                     queue_id=queue_id)
    assert res.returncode == 0, res.stderr
    assert len(read_records(kafka.brokers, where=by_queue_id(queue_id))) == 1
    # And a new daemon takes over the stale socket file.
    daemon = start_ingestd(kafka, daemon_config)
    assert stop_ingestd(daemon) == 0


def test_many_clients_share_the_daemon_within_its_memory_limit(kafka, tmp_path):
    config = kafka.write_config(tmp_path / "small.conf", ingestd_memory_limit="1MiB",
                                ingestd_socket=str(tmp_path / "small.sock"))
    daemon = start_ingestd(kafka, config)
    batch = unique("M")
    messages = {f"{batch}-{i}": b"Subject: %d\n\n" % i + bytes([i]) * 400_000
                for i in range(12)}
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            results = list(pool.map(
                lambda q: run_ingest(config, ["bot@robots.example.test"], messages[q],
                                     queue_id=q), messages))
    finally:
        assert stop_ingestd(daemon) == 0
    assert [r.returncode for r in results] == [0] * 12, [r.stderr for r in results]
    records = read_records(kafka.brokers, expect=12,
                           where=lambda r: r.h("mr.queue_id").startswith(batch))
    assert {r.h("mr.queue_id"): r.value for r in records} == messages


def test_sigterm_answers_every_message_in_flight(kafka, daemon_config):
    """Stopping the daemon while clients are sending: every client gets an
    answer, and every 0 it gave is a record in Kafka (nothing acknowledged
    is lost, nothing is left hanging)."""
    daemon = start_ingestd(kafka, daemon_config)
    batch = unique("S")

    def one(i):
        return run_ingest(daemon_config, ["bot@robots.example.test"],
                          b"Subject: %d\n\n" % i + b"z" * 200_000, queue_id=f"{batch}-{i}")

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        futures = [pool.submit(one, i) for i in range(30)]
        time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert daemon.wait(timeout=30) == 0
    published = {f"{batch}-{i}" for i, r in enumerate(results) if r.returncode == 0}
    for r in results:
        assert r.returncode in (0, 75), r.stderr
        if r.returncode == 75:
            assert r.stderr.decode().startswith("4."), r.stderr
    records = read_records(kafka.brokers, expect=len(published), timeout=30,
                           where=lambda r: r.h("mr.queue_id").startswith(batch))
    assert published <= {r.h("mr.queue_id") for r in records}


def field(b):
    return struct.pack(">I", len(b)) + b


def raw_request(sock_path, payload, read=True):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(str(sock_path))
    s.sendall(payload)
    if not read:
        s.close()
        return None
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = s.recv(1024)
        if not chunk:
            break
        answer += chunk
    s.close()
    return answer.decode()


def envelope(recipients=(b"r@x",), message_len=0):
    head = b"MRI2" + b"".join(field(v) for v in (b"s@x", b"Q", b"", b"", b"", b"", b"", b"", b""))
    head += struct.pack(">I", len(recipients))
    head += b"".join(field(r) + field(b"") for r in recipients)
    return head + struct.pack(">I", message_len)


def test_daemon_survives_garbage_and_half_requests(kafka, daemon_config):
    daemon = start_ingestd(kafka, daemon_config)
    try:
        assert raw_request(kafka.socket, b"HELO hostile\r\n").startswith(
            "75 4.3.0 mailrobot-ingestd: bad request: not a relay request")
        assert raw_request(kafka.socket, b"MRI2" + struct.pack(">I", 10**9)).startswith(
            "75 4.3.0 mailrobot-ingestd: bad request: envelope field longer than")
        assert raw_request(kafka.socket, envelope(recipients=())).startswith(
            "75 4.3.0 mailrobot-ingestd: bad request: bad recipient count 0")
        assert raw_request(kafka.socket, envelope(message_len=2**31)).startswith(
            "65 5.3.4 message too big")
        assert raw_request(kafka.socket, envelope(message_len=5) + b"abcdefgh").startswith(
            "75 4.3.0 mailrobot-ingestd: bad request: more bytes than the request announced")
        # Half a message, then the client goes away.
        raw_request(kafka.socket, envelope(message_len=1000) + b"x" * 10, read=False)
        assert daemon.poll() is None
        queue_id = unique()
        res = run_ingest(daemon_config, ["bot@robots.example.test"], b"Subject: ok\n\nb\n",
                         queue_id=queue_id)
        assert res.returncode == 0, res.stderr
    finally:
        assert stop_ingestd(daemon) == 0
    assert len(read_records(kafka.brokers, where=by_queue_id(queue_id))) == 1


def test_daemon_that_never_answers_defers_within_the_time_limit(kafka, tmp_path):
    """Something listens on the socket but never answers: the ingest gives
    up after ingest_time_limit plus the daemon's grace, with a 4.4.1 line."""
    path = tmp_path / "stuck.sock"
    stuck = socket.socket(socket.AF_UNIX)
    stuck.bind(str(path))
    stuck.listen(8)
    config = kafka.write_config(tmp_path / "stuck.conf", ingestd_socket=str(path),
                                ingest_time_limit="1s")
    try:
        started = time.monotonic()
        res = run_ingest(config, ["bot@robots.example.test"], b"Subject: x\n\nb\n")
        elapsed = time.monotonic() - started
    finally:
        stuck.close()
    assert res.returncode == 75
    [line] = res.stderr.decode().splitlines()
    assert line.startswith("4.4.1 ") and "did not answer within the time limit" in line, line
    assert elapsed < 1 + 5 + 5, elapsed
