"""Helpers for the exec robot tests (test_exec*.py): exec robots and routes
written into Redis as docs/redis.md says, a module-scoped stack with a
worker configured for exec robots, sending mail through the ingest, and
reading a message's events and records back with an independent Kafka
client."""

import json
import shutil
import time
from pathlib import Path

import redis

from mailrobot_harness import (read_records, run_ingest, start_ingestd, start_worker,
                               stop_ingestd, stop_worker, unique)
from webhook_receiver import Receiver

HERE = Path(__file__).parent
EXEC_USER = "mailrobot-exec"
DOMAIN = "exec.example.test"


class Robots:
    """Exec robots and their routes, written into Redis as docs/redis.md says."""

    def __init__(self, url):
        self.r = redis.Redis.from_url(url)

    def put(self, doc):
        """Any robot document, routed from <name>@DOMAIN. Returns that address."""
        name = doc["name"]
        self.r.set(f"mailrobot:robot:{name}", json.dumps(doc))
        self.r.sadd("mailrobot:robots", name)
        self.r.set(f"mailrobot:route:{name}@{DOMAIN}", name)
        self.r.sadd("mailrobot:routes", f"{name}@{DOMAIN}")
        self.r.incr("mailrobot:robots:version")
        return f"{name}@{DOMAIN}"

    def add(self, name, command, **fields):
        """An exec robot running command."""
        exec_fields = {"command": command, **fields.pop("exec", {})}
        return self.put({"name": name, "kind": "exec", "exec": exec_fields, **fields})


def exec_stack(kafka, robot_dirs=(HERE / "robots",), **config):
    """Starts Redis, the ingest daemon, a worker and a webhook receiver on
    the stack; copies the robot scripts of robot_dirs into <stack>/bin.
    A generator: use it in a module-scoped fixture with `yield from`."""
    kafka.start("redis")
    redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    robots_dir = kafka.dir / "robots"
    settings = dict(redis_url=redis_url, retry_delays="1s,2s",
                    worker_http_listen="127.0.0.1:0", webhook_allow_private="yes",
                    exec_directory=str(robots_dir), exec_time_limit="30s",
                    **{"kafka.session.timeout.ms": "6000"})
    settings.update(config)
    kafka.write_config(**settings)
    kafka.kafka_init()
    bin_dir = kafka.dir / "bin"
    bin_dir.mkdir(mode=0o755)
    for robot_dir in robot_dirs:
        for script in Path(robot_dir).iterdir():
            if script.is_file():
                shutil.copy(script, bin_dir / script.name)
                (bin_dir / script.name).chmod(0o755)
    kafka.bin = bin_dir
    kafka.robots = Robots(redis_url)
    kafka.redis = kafka.robots.r
    kafka.robots_dir = robots_dir
    daemon = start_ingestd(kafka)
    kafka.worker = start_worker(kafka)
    kafka.receiver = Receiver()
    yield kafka
    kafka.receiver.close()
    assert stop_worker(kafka.worker) == 0, open(kafka.worker.log_path).read()[-3000:]
    stop_ingestd(daemon)


def outdir(env, name):
    """A directory every robot user may write into."""
    d = env.dir / f"out-{name}-{unique()}"
    d.mkdir()
    d.chmod(0o777)
    return d


def send(env, recipient, subject="hello", body="Hi robot.\n", sender="alice@example.org",
         headers="", extra_args=()):
    queue_id = unique()
    msg = (f"From: Alice <{sender}>\nTo: {recipient}\nSubject: {subject}\n"
           f"Message-ID: <{queue_id}@example.org>\n{headers}\n{body}").encode()
    res = run_ingest(env.config, [recipient], msg, queue_id=queue_id, sender=sender,
                     extra_args=extra_args)
    assert res.returncode == 0, res.stderr
    [rec] = read_records(env.brokers, where=lambda r: r.h("mr.queue_id") == queue_id)
    return rec.h("mr.id"), msg


def events(env, mr_id, until, timeout=60):
    """The events of one message up to the first of type `until`."""
    deadline = time.monotonic() + timeout
    while True:
        evs = [json.loads(r.value) for r in read_records(
            env.brokers, "mailrobot.events", where=lambda r: r.key == mr_id.encode(),
            expect=None, timeout=20)]
        if any(e["type"] == until for e in evs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert any(e["type"] == until for e in evs), (until, evs,
                                                  open(env.worker.log_path).read()[-3000:])
    return evs


def records_of(env, topic, mr_id, expect=1, timeout=60):
    return read_records(env.brokers, topic, where=lambda r: r.h("mr.id") == mr_id,
                        expect=expect, timeout=timeout)


def recorded(directory, count=1, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(directory.glob("*.json"))
        if len(found) >= count:
            return [json.loads(p.read_text()) | {"stdin": p.with_suffix(".stdin").read_bytes()}
                    for p in found]
        time.sleep(0.1)
    raise AssertionError(f"{count} recordings expected in {directory}: {list(directory.iterdir())}")
