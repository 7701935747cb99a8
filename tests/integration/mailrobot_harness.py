"""Helpers for the integration tests: a private copy of the local stack
(real Kafka, Redis, Postfix and mailrobot-ingestd, started with the
deploy/local scripts on free loopback ports in a throw-away directory),
mailrobot configs, running the ingest, and reading Kafka with an
independent client (confluent-kafka)."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MR_BUILD_DIR", REPO / "build")).resolve()
BIN = BUILD / "bin"
LOCAL = REPO / "deploy" / "local"
INGEST = BIN / "mailrobot-ingest"
INGESTD = BIN / "mailrobot-ingestd"
CTL = BIN / "mailrobotctl"
WORKER = BIN / "mailrobot-worker"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    """The environment Postfix's pipe(8) gives a command: nearly nothing.
    (A stray MAILROBOT_* variable would be an unknown-key error.)"""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Stack:
    """One private local stack. Services start on demand; stop_all() stops
    what was started, by the pid files the scripts keep."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="mailrobot-it-"))
        # Postfix (as user postfix) and the pipe user must traverse it.
        self.dir.chmod(0o755)
        self.env = dict(os.environ)
        self.env.update(
            MR_STATE_DIR=str(self.dir),
            MR_KAFKA_PORT=str(free_port()),
            MR_KAFKA_CONTROLLER_PORT=str(free_port()),
            MR_REDIS_PORT=str(free_port()),
            MR_SMTP_PORT=str(free_port()),
            MR_BUILD_DIR=str(BUILD),
            MR_CONFIG=str(self.dir / "mailrobot.conf"),
            MR_QUIET="1",
        )
        self.started = []
        self.processes = []  # programs the tests started themselves
        self.config = self.dir / "mailrobot.conf"
        self.socket = self.dir / "ingestd" / "ingestd.sock"

    @property
    def brokers(self):
        return f"127.0.0.1:{self.env['MR_KAFKA_PORT']}"

    @property
    def smtp_port(self):
        return int(self.env["MR_SMTP_PORT"])

    def script(self, service, *args, timeout=180):
        res = subprocess.run([str(LOCAL / service), *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"deploy/local/{service} {' '.join(args)} failed "
                               f"({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def start(self, service, *args):
        self.script(service, "start", *args)
        if service not in self.started:
            self.started.append(service)

    def stop(self, service):
        self.script(service, "stop")

    def write_config(self, path=None, **keys):
        """A mailrobot.conf for this stack; keys override the defaults."""
        values = {
            "kafka_brokers": self.brokers,
            "ingestd_socket": str(self.socket),
            "ingest_time_limit": "20s",
        }
        values.update(keys)
        path = Path(path or self.config)
        path.write_text("".join(f"{k} = {v}\n" for k, v in values.items()))
        path.chmod(0o644)
        return path

    def kafka_init(self):
        res = subprocess.run([str(CTL), "-C", str(self.config), "kafka", "init",
                              "--timeout", "60s"], env=clean_env(),
                             capture_output=True, text=True, timeout=90)
        assert res.returncode == 0, res.stdout + res.stderr

    def stop_all(self):
        # Whatever a test started and did not stop (a failure half-way):
        # SIGTERM, then SIGKILL. Never leave a process behind.
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for service in reversed(self.started):
            try:
                self.stop(service)
            except Exception as exc:  # keep stopping the others
                print(f"warning: stopping {service}: {exc}")
        if not os.environ.get("MR_KEEP_STATE"):
            shutil.rmtree(self.dir, ignore_errors=True)


def run_ingest(config, recipients, message, sender="sender@example.org", queue_id=None,
               extra_args=(), env=None, timeout=120, program=INGEST):
    """Runs the pipe program as pipe(8) would (SPEC §3 argv)."""
    args = [str(program), "-C", str(config), "-f", sender]
    if queue_id is not None:
        args += ["-q", queue_id]
    args += list(extra_args) + ["--", *recipients]
    return subprocess.run(args, input=message, capture_output=True,
                          env=env if env is not None else clean_env(), timeout=timeout)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict = field(default_factory=dict)      # the last value of each name
    header_list: list = field(default_factory=list)  # all (name, value), in order

    def h(self, name):
        return self.headers.get(name, b"").decode()


def read_records(brokers, topic="mailrobot.inbound", where=None, expect=1, timeout=60):
    """Reads the topic from the beginning with confluent-kafka (not our own
    code) until `expect` records satisfy `where` (or, with expect=None, to
    the end). Returns the matching records in (partition, offset) order."""
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"it-{os.getpid()}-{time.monotonic_ns()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.message.max.bytes": 33554432,
    })
    try:
        meta = consumer.list_topics(topic, timeout=20)
        parts = sorted(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        found, at_end = [], set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expect is not None and len(found) >= expect:
                break
            if expect is None and len(at_end) == len(parts):
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(msg.partition())
                    continue
                raise RuntimeError(msg.error())
            rec = Record(msg.topic(), msg.partition(), msg.offset(), msg.key() or b"",
                         msg.value() if msg.value() is not None else None,
                         {k: v for k, v in (msg.headers() or [])}, list(msg.headers() or []))
            if where is None or where(rec):
                found.append(rec)
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def by_queue_id(queue_id):
    return lambda r: r.headers.get("mr.queue_id") == queue_id.encode()


def expected_record_id(queue_id, recipient, message):
    """mr.id computed independently of the C code: BLAKE2b-128 over the
    length-prefixed (64-bit little-endian) queue id, recipient, message."""
    h = hashlib.blake2b(digest_size=16)
    for part in (queue_id.encode(), recipient.encode(), message):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def unique(prefix="Q"):
    return f"{prefix}{time.monotonic_ns():X}"


class SilentServer:
    """A TCP listener that accepts connections and never answers: a broker
    that is up but hopelessly slow."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def start_ingestd(stack, config=None):
    """Starts mailrobot-ingestd in the foreground of the test (not via the
    script), returning the Popen; waits for its socket."""
    config = config or stack.config
    Path(read_config_key(config, "ingestd_socket")).parent.mkdir(parents=True, exist_ok=True)
    log = open(stack.dir / f"ingestd-{time.monotonic_ns()}.log", "wb")
    proc = subprocess.Popen([str(INGESTD), "-C", str(config)], stdout=log, stderr=log,
                            env=clean_env())
    stack.processes.append(proc)
    deadline = time.monotonic() + 15
    # Not the socket file: a killed daemon leaves a stale one behind.
    while b'"msg":"listening"' not in Path(log.name).read_bytes():
        assert proc.poll() is None, f"mailrobot-ingestd exited: {log.name}"
        assert time.monotonic() < deadline, "mailrobot-ingestd did not start listening"
        time.sleep(0.05)
    proc.log_path = log.name
    return proc


def stop_ingestd(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    return proc.returncode


def read_config_key(config, key):
    for line in Path(config).read_text().splitlines():
        if "=" in line and line.split("=", 1)[0].strip() == key:
            return line.split("=", 1)[1].strip()
    return None


def wait_for_log(path, needle, timeout=30, proc=None, count=1):
    """Waits until the log file holds `needle` (bytes) `count` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = Path(path).read_bytes() if Path(path).exists() else b""
        if data.count(needle) >= count:
            return data
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}); log {path}:\n"
                                 + data.decode(errors="replace")[-3000:])
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} in {path} within {timeout}s")


def start_worker(stack, config=None, wait_assigned=True):
    """Starts a mailrobot-worker; waits until it has joined its group and
    got partitions. Returns the Popen with .log_path and .http_port."""
    config = config or stack.config
    log_path = stack.dir / f"worker-{time.monotonic_ns()}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(WORKER), "-C", str(config)], stdout=log, stderr=log,
                            env=clean_env())
    stack.processes.append(proc)
    proc.log_path = log_path
    data = wait_for_log(log_path, b'"msg":"http listening"', proc=proc)
    import json as _json
    for line in data.splitlines():
        if b'"msg":"http listening"' in line:
            proc.http_port = int(_json.loads(line)["port"])
    if wait_assigned:
        wait_for_log(log_path, b'"msg":"partitions assigned"', timeout=60, proc=proc)
    return proc


def stop_worker(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    return proc.returncode
