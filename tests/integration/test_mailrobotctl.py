"""mailrobotctl against a real Kafka broker: `kafka init` creates the
topics of SPEC §4 with the configured settings and is safe to repeat,
reports a topic too small for max_message_bytes, and fails clearly without
a broker; `kafka read` finds a record by header; `config check` names the
bad line. Also: log lines validate against schemas/log-line-v1.json."""

import json
import subprocess
import time

import jsonschema
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from mailrobot_harness import (CTL, REPO, clean_env, free_port, run_ingest, start_ingestd,
                               stop_ingestd, unique)


def ctl(config, *args, timeout=120):
    return subprocess.run([str(CTL), "-C", str(config), *args], capture_output=True,
                          text=True, env=clean_env(), timeout=timeout)


def topic_configs(brokers, names):
    """Partitions and configs of topics, read with confluent-kafka's admin
    client (retrying while a just-created topic propagates)."""
    admin = AdminClient({"bootstrap.servers": brokers})
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    for attempt in range(40):
        try:
            meta = admin.list_topics(timeout=20)
            configs = {r.name: {k: v.value for k, v in f.result().items()}
                       for r, f in admin.describe_configs(resources).items()}
            return meta, configs
        except Exception:
            if attempt == 39:
                raise
            time.sleep(0.25)


def test_kafka_init_creates_the_spec_topics_and_is_safe_to_repeat(kafka, tmp_path):
    config = kafka.write_config(tmp_path / "init.conf", topic_prefix="acme",
                                topic_partitions="3", retry_delays="30s,5m",
                                max_message_bytes="10MiB", topic_retention="2d")
    first = ctl(config, "kafka", "init")
    assert first.returncode == 0, first.stderr
    names = ["acme.inbound", "acme.retry.30s", "acme.retry.5m", "acme.dead", "acme.outbound",
             "acme.events", "acme.audit"]
    assert [line.split()[:2] for line in first.stdout.splitlines()] == \
        [["created", n] for n in names]
    meta, configs = topic_configs(kafka.brokers, names)
    for name in names:
        assert len(meta.topics[name].partitions) == 3
        assert int(configs[name]["max.message.bytes"]) >= 10 * 1024 * 1024 + 4096
    assert configs["acme.inbound"]["retention.ms"] == str(2 * 86400000)

    again = ctl(config, "kafka", "init")
    assert again.returncode == 0, again.stderr
    assert [line.split()[:2] for line in again.stdout.splitlines()] == \
        [["exists", n] for n in names]
    assert ctl(config, "kafka", "topics").stdout.split() == names


def test_kafka_init_reports_a_topic_too_small_for_the_mail(kafka, tmp_path):
    prefix = unique("small").lower()
    admin = AdminClient({"bootstrap.servers": kafka.brokers})
    futures = admin.create_topics([NewTopic(f"{prefix}.inbound", 1, 1,
                                            config={"max.message.bytes": "1048588"})])
    futures[f"{prefix}.inbound"].result()
    topic_configs(kafka.brokers, [f"{prefix}.inbound"])  # wait until the broker shows it
    config = kafka.write_config(tmp_path / "small.conf", topic_prefix=prefix)
    res = ctl(config, "kafka", "init")
    assert res.returncode == 1
    assert f"unfit    {prefix}.inbound  max.message.bytes=1048588 is below the" in res.stdout
    assert "1 of 9 topics failed or are unfit" in res.stderr


def test_kafka_init_without_a_broker_fails_clearly(kafka, tmp_path):
    port = free_port()
    config = kafka.write_config(tmp_path / "dead.conf", kafka_brokers=f"127.0.0.1:{port}")
    res = ctl(config, "kafka", "init", "--timeout", "3s")
    assert res.returncode == 1
    assert f"kafka init at 127.0.0.1:{port}: creating topics:" in res.stderr
    assert "Connection refused" in res.stderr or "timed out" in res.stderr.lower()


def test_kafka_read_finds_a_record_by_header(kafka):
    queue_id = unique()
    res = run_ingest(kafka.config, ["bot@robots.example.test"],
                     b"Subject: findme\n\nbody\n", queue_id=queue_id)
    assert res.returncode == 0, res.stderr
    out = ctl(kafka.config, "kafka", "read", "--header", f"mr.queue_id={queue_id}",
              "--count", "1", "--timeout", "20s")
    assert out.returncode == 0, out.stderr
    assert f"mr.queue_id: {queue_id}" in out.stdout
    assert "  | Subject: findme" in out.stdout
    raw = subprocess.run([str(CTL), "-C", str(kafka.config), "kafka", "read", "--header",
                          f"mr.queue_id={queue_id}", "--count", "1", "--value"],
                         capture_output=True, env=clean_env(), timeout=60)
    assert raw.stdout == b"Subject: findme\n\nbody\n"


def test_config_check_names_the_bad_line(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("kafka_brokers = k:1\nkafka.compression.codec = brotli\n")
    res = ctl(bad, "config", "check")
    assert res.returncode == 1
    assert f"{bad}:2: kafka.compression.codec:" in res.stderr
    bad.write_text("kafka.acks = 1\n")
    res = ctl(bad, "config", "check")
    assert res.returncode == 1
    assert f"{bad}:1: kafka.acks = 1: mailrobot requires acks = all" in res.stderr


def test_log_lines_follow_the_schema(kafka, tmp_path):
    schema = json.loads((REPO / "schemas" / "log-line-v1.json").read_text())
    config = kafka.write_config(tmp_path / "log.conf", log_level="debug",
                                ingestd_socket=str(tmp_path / "log.sock"))
    daemon = start_ingestd(kafka, config)
    try:
        res = run_ingest(config, ["bot@robots.example.test"],
                         "Subject: caf\u00e9 \x01\n\nb\n".encode() + b"\xff", queue_id="Q\u00e9\x02")
        assert res.returncode == 0, res.stderr
    finally:
        assert stop_ingestd(daemon) == 0
    lines = open(daemon.log_path, encoding="utf-8").read().splitlines()
    assert len(lines) >= 3
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
    assert any(json.loads(line)["msg"] == "published" and
               json.loads(line)["queue_id"] == "Q\u00e9\x02" for line in lines)
