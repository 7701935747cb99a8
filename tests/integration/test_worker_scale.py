"""Workers at scale and under failure (SPEC §6): three workers in one group
share the mail of one busy address; then 5,000 messages while workers are
SIGKILLed at random moments and restarted; then 5,000 more while Redis and
Kafka are restarted. Every message must reach the receiver: the distinct
Mailrobot-Delivery ids it saw must be exactly the ids that were sent."""

import json
import os
import random
import signal
import threading
import time

import pytest
import redis
from confluent_kafka import Producer

from mailrobot_harness import read_records, start_worker, stop_worker
from webhook_receiver import Receiver

ADDRESS = "busy@scale.example.test"


@pytest.fixture(scope="module")
def env(kafka):
    kafka.start("redis")
    redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    kafka.write_config(redis_url=redis_url, retry_delays="1s,2s,3s,5s,8s",
                       worker_http_listen="127.0.0.1:0", webhook_allow_private="yes",
                       worker_drain_time_limit="5s",
                       **{"kafka.session.timeout.ms": "6000",
                          "kafka.heartbeat.interval.ms": "1000"})
    kafka.kafka_init()  # the retry topics of these retry_delays
    receiver = Receiver()
    r = redis.Redis.from_url(redis_url)
    r.set("mailrobot:robot:scale", json.dumps({
        "name": "scale", "kind": "webhook", "concurrency": 32,
        "webhook": {"url": receiver.url("/ok"), "secret": "scale-secret-0123456789"}}))
    r.set("mailrobot:route:@scale.example.test", "scale")
    r.incr("mailrobot:robots:version")
    kafka.receiver = receiver
    kafka.workers = [start_worker(kafka, wait_assigned=False) for _ in range(3)]
    for w in kafka.workers:
        from mailrobot_harness import wait_for_log
        wait_for_log(w.log_path, b'"msg":"partitions assigned"', timeout=60, proc=w)
    yield kafka
    for w in kafka.workers:
        stop_worker(w, timeout=120)
    receiver.close()


def produce(env, count, tag):
    """Writes count inbound records for ADDRESS, as the ingest would."""
    p = Producer({"bootstrap.servers": env.brokers, "enable.idempotence": True,
                  "linger.ms": 5})
    ids = []
    for i in range(count):
        mr_id = f"{tag}{i:06d}".ljust(32, "0")[:32]
        ids.append(mr_id)
        msg = (f"From: load@example.org\nTo: {ADDRESS}\nSubject: {tag} {i}\n"
               f"Message-ID: <{mr_id}@example.org>\n\nbody {i}\n").encode()
        p.produce("mailrobot.inbound", key=f"{ADDRESS} {mr_id}@example.org", value=msg,
                  headers=[("mr.v", b"1"), ("mr.id", mr_id.encode()),
                           ("mr.sender", b"load@example.org"), ("mr.recipient", ADDRESS.encode()),
                           ("mr.original_recipient", ADDRESS.encode()), ("mr.queue_id", b""),
                           ("mr.client_address", b"127.0.0.1"), ("mr.helo", b"load"),
                           ("mr.sasl_username", b""),
                           ("mr.received_at", b"2026-11-29T10:00:00.000Z")])
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return ids


def delivered_ids(receiver, tag):
    return {r["headers"]["Mailrobot-Delivery"] for r in receiver.received("/ok")
            if r["headers"]["Mailrobot-Delivery"].startswith(tag)}


def wait_all(receiver, tag, ids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = delivered_ids(receiver, tag)
        if got >= set(ids):
            return got
        time.sleep(0.5)
    got = delivered_ids(receiver, tag)
    raise AssertionError(f"{len(set(ids) - got)} of {len(ids)} never delivered")


def test_one_busy_address_keeps_all_three_workers_busy(env):
    ids = produce(env, 300, "b")
    wait_all(env.receiver, "b", ids, 120)
    events = read_records(env.brokers, "mailrobot.events", expect=None, timeout=60,
                          where=lambda r: r.key.startswith(b"b"))
    workers = {json.loads(e.value)["worker"] for e in events
               if json.loads(e.value)["type"] == "delivered"}
    assert workers == {f"{os.uname().nodename}:{w.pid}" for w in env.workers}


def restart_worker(env, index):
    from mailrobot_harness import start_worker as start
    env.workers[index] = start(env, wait_assigned=False)


def test_sigkill_workers_at_random_loses_nothing(env):
    ids = produce(env, 5000, "k")
    rng = random.Random(42)
    stop = threading.Event()

    def killer():
        for _ in range(4):
            if stop.wait(rng.uniform(1.0, 3.0)):
                return
            i = rng.randrange(3)
            env.workers[i].send_signal(signal.SIGKILL)
            env.workers[i].wait()
            time.sleep(rng.uniform(0.2, 1.0))
            restart_worker(env, i)

    t = threading.Thread(target=killer)
    t.start()
    try:
        got = wait_all(env.receiver, "k", ids, 300)
    finally:
        stop.set()
        t.join()
    assert got == set(ids)
    dead = read_records(env.brokers, "mailrobot.dead", expect=None, timeout=20,
                        where=lambda r: r.h("mr.id").startswith("k"))
    assert dead == []


def test_redis_and_kafka_restarts_lose_nothing(env):
    ids = produce(env, 5000, "r")
    time.sleep(1)
    env.stop("redis")
    time.sleep(2)
    env.start("redis")
    time.sleep(2)
    env.stop("kafka")
    time.sleep(2)
    env.start("kafka")
    got = wait_all(env.receiver, "r", ids, 300)
    assert got == set(ids)
    for w in env.workers:
        assert w.poll() is None, f"a worker died: {w.log_path}"
    # The delivery log survived the restarts too: every message has its
    # "delivered" event.
    events = read_records(env.brokers, "mailrobot.events", expect=None, timeout=120,
                          where=lambda r: r.key.startswith(b"r"))
    delivered = {json.loads(e.value)["id"] for e in events
                 if json.loads(e.value)["type"] == "delivered"}
    assert delivered == set(ids), f"{len(set(ids) - delivered)} without a delivered event"
