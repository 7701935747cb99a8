"""mailrobotctl's robot, route, dlq, replay and tail commands against real
Redis and Kafka: robots applied, listed, shown (secret hidden) and deleted;
validation errors that name the field, with `robot validate` agreeing with
a JSON Schema validator on schemas/robot-v1.json; routes and their
precedence (SPEC §6); dead letters and time windows republished to the
inbound topic byte for byte with the headers record.h describes; tail."""

import json
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import jsonschema
import pytest
import redis
from confluent_kafka import Producer

from mailrobot_harness import CTL, REPO, clean_env, read_records, unique

SECRET = "whsec_0123456789abcdef"
SCHEMA = json.loads((REPO / "schemas" / "robot-v1.json").read_text())


@pytest.fixture(scope="module")
def stack_with_redis(kafka):
    """Kafka (from conftest) plus Redis, and a config naming both."""
    kafka.start("redis")
    kafka.redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    kafka.write_config(redis_url=kafka.redis_url)
    return kafka


@pytest.fixture
def site(stack_with_redis, tmp_path):
    """A config of its own for one test: a fresh Redis prefix and Kafka
    topic prefix (topics are created only by tests that ask: site.topics())."""
    s = stack_with_redis
    prefix = unique("t").lower()
    config = s.write_config(tmp_path / "site.conf", redis_url=s.redis_url, redis_prefix=prefix,
                            topic_prefix=prefix)

    def topics():
        res = ctl(config, "kafka", "init", "--timeout", "60s")
        assert res.returncode == 0, res.stdout + res.stderr

    return SimpleNamespace(config=config, prefix=prefix, brokers=s.brokers, topics=topics,
                           redis=redis.Redis.from_url(s.redis_url))


def ctl(config, *args, input=None, timeout=120):
    return subprocess.run([str(CTL), "-C", str(config), *args], capture_output=True,
                          input=input, env=clean_env(), timeout=timeout)


def out(res):
    return res.stdout.decode()


def err(res):
    return res.stderr.decode()


def robot_doc(name, url="https://app.example.com/hooks/mail", **fields):
    webhook = {"url": url, "secret": SECRET, **fields.pop("webhook", {})}
    return {"name": name, "kind": "webhook", **fields, "webhook": webhook}


def apply(site, doc):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc, indent=2).encode()
    res = ctl(site.config, "robot", "apply", "-", input=raw)
    assert res.returncode == 0, err(res)
    return raw


# --- robots ---------------------------------------------------------------------------------


def test_apply_list_show_delete(site, tmp_path):
    path = tmp_path / "tickets.json"
    tickets = json.dumps(robot_doc("tickets", ordered="strict", concurrency=8, timeout="10s"),
                         indent=1).encode() + b"\n"
    path.write_bytes(tickets)
    res = ctl(site.config, "robot", "apply", str(path))
    assert res.returncode == 0, err(res)
    assert out(res) == "applied robot tickets\n"
    alerts = apply(site, robot_doc("alerts", url="http://10.0.0.7:8080/in",
                                   webhook={"allow_private": True, "format": "raw"}))

    r, p = site.redis, site.prefix
    assert r.get(f"{p}:robot:tickets") == tickets  # the document exactly as given
    assert r.get(f"{p}:robot:alerts") == alerts
    assert r.smembers(f"{p}:robots") == {b"tickets", b"alerts"}
    assert r.get(f"{p}:robots:version") == b"2"

    listing = ctl(site.config, "robot", "list")
    assert listing.returncode == 0, err(listing)
    lines = out(listing).splitlines()
    assert [line.split()[0] for line in lines] == ["alerts", "tickets"]
    assert lines[0].split() == ["alerts", "webhook", "http://10.0.0.7:8080/in", "ordered=true",
                                "concurrency=default"]
    assert lines[1].split() == ["tickets", "webhook", "https://app.example.com/hooks/mail",
                                "ordered=strict", "concurrency=8"]

    shown = ctl(site.config, "robot", "show", "tickets")
    assert shown.returncode == 0, err(shown)
    assert SECRET not in out(shown)
    expected = json.loads(tickets)
    expected["webhook"]["secret"] = "(hidden)"
    assert json.loads(out(shown)) == expected

    # Applying again replaces the document.
    apply(site, robot_doc("tickets", ordered=False))
    assert json.loads(r.get(f"{p}:robot:tickets"))["ordered"] is False
    assert r.get(f"{p}:robots:version") == b"3"

    deleted = ctl(site.config, "robot", "delete", "tickets")
    assert deleted.returncode == 0, err(deleted)
    assert out(deleted) == "deleted robot tickets\n"
    assert r.get(f"{p}:robot:tickets") is None
    assert r.smembers(f"{p}:robots") == {b"alerts"}
    assert r.get(f"{p}:robots:version") == b"4"
    gone = ctl(site.config, "robot", "show", "tickets")
    assert gone.returncode == 1
    assert err(gone) == "mailrobotctl: robot show tickets: no such robot\n"
    again = ctl(site.config, "robot", "delete", "tickets")
    assert again.returncode == 1
    assert r.get(f"{p}:robots:version") == b"4"


def test_apply_refuses_a_bad_document_and_names_the_field(site, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "tickets",\n  "kind": "webhook",\n'
                    '  "webhook": {"url": "ftp://files.example.com/", "secret": "%s"}\n}\n'
                    % SECRET)
    res = ctl(site.config, "robot", "apply", str(path))
    assert res.returncode == 1
    assert err(res) == (f"mailrobotctl: {path}: /webhook/url: must be an absolute http:// "
                        "or https:// URL\n")
    path.write_text('{\n  "name": "tickets",\n  "kind": "webhook"\n  "webhook": {}\n}\n')
    res = ctl(site.config, "robot", "apply", str(path))
    assert res.returncode == 1
    assert err(res) == (f"mailrobotctl: {path}: /: not a JSON object (line 4, column 11: "
                        "'}' expected near '\"webhook\"')\n")
    res = ctl(site.config, "robot", "apply", str(tmp_path / "missing.json"))
    assert res.returncode == 1
    assert "missing.json: cannot open: No such file or directory" in err(res)
    assert site.redis.keys(f"{site.prefix}:*") == []


def test_list_needs_redis_but_validate_does_not(site):
    dead = site.config.parent / "dead-redis.conf"
    dead.write_text(re.sub(r"redis_url = .*", "redis_url = redis://127.0.0.1:1/0",
                           site.config.read_text()))
    res = ctl(dead, "robot", "list")
    assert res.returncode == 1
    assert "mailrobotctl: robot list: redis at redis://127.0.0.1:1/0:" in err(res)
    res = ctl(dead, "robot", "validate", "-", input=json.dumps(robot_doc("x")).encode())
    assert res.returncode == 0, err(res)
    assert out(res) == "ok: x\n"


# --- robot validate against an independent oracle: JSON Schema -----------------------------

LONG = "a" * 64


def with_fields(**fields):
    return robot_doc("r", **fields)


def exec_doc(**fields):
    return {"name": "r", "kind": "exec", "exec": {"command": "/usr/local/bin/r.py", **fields}}


def autoreply_doc(**fields):
    return {"name": "r", "kind": "autoreply", "autoreply": {"text": "Away.", **fields}}


def forward_doc(**fields):
    return {"name": "r", "kind": "forward", "forward": {"to": ["bob@example.org"], **fields}}


def with_webhook(**fields):
    return robot_doc("r", webhook=fields)


# (id, document (object, or bytes as they are), accepted?, field a rejection names)
VALIDATION_CASES = [
    ("minimal", robot_doc("r"), True, None),
    ("everything", robot_doc("tickets.v2_x-y", ordered="strict", concurrency=10000,
                             timeout="1h", webhook={"format": "raw", "allow_private": False}),
     True, None),
    ("ordered-false", with_fields(ordered=False), True, None),
    ("concurrency-8.0", with_fields(concurrency=8.0), True, None),
    ("timeout-500ms", with_fields(timeout="500ms"), True, None),
    ("timeout-bare-seconds", with_fields(timeout="0030"), True, None),
    ("timeout-60m", with_fields(timeout="60m"), True, None),
    ("spam-deliver", with_fields(spam="deliver"), True, None),
    ("spam-tag", with_fields(spam="tag"), True, None),
    ("spam-skip", with_fields(spam="skip"), True, None),
    ("spam-skip-exec", {**exec_doc(), "spam": "skip"}, True, None),
    ("spam-tag-forward", {**forward_doc(), "spam": "tag"}, True, None),
    ("name-64", robot_doc(LONG), True, None),
    ("url-ipv6-port", robot_doc("r", url="http://[::1]:65535/in"), True, None),
    ("url-query-escapes", robot_doc("r", url="https://h.example/a%2Fb?x=1&y=(z);k=~v!*"),
     True, None),
    ("secret-16-printable", with_webhook(secret="a b!c\"d#e$f%g&h'"), True, None),
    ("name-uppercase", robot_doc("Tickets"), False, "/name"),
    ("name-65", robot_doc(LONG + "a"), False, "/name"),
    ("name-newline", robot_doc("tickets\n"), False, "/name"),
    ("name-missing", {"kind": "webhook", "webhook": robot_doc("r")["webhook"]}, False, "/name"),
    ("unknown-field", with_fields(colour="red"), False, "/colour"),
    ("unknown-webhook-field", with_webhook(retries=3), False, "/webhook/retries"),
    ("kind-missing", {"name": "r", "webhook": robot_doc("r")["webhook"]}, False, "/kind"),
    ("kind-exec-with-webhook", {**robot_doc("r"), "kind": "exec"}, False, "/webhook"),
    ("kind-lua", {"name": "r", "kind": "lua"}, False, "/kind"),
    ("exec-minimal", exec_doc(), True, None),
    ("exec-everything", exec_doc(command="/usr/local/bin/t.py --q a", shell=True,
                                 user="mailrobot-exec", group="mailrobot-exec",
                                 directory="/var/lib/t", output="actions", sandbox="bwrap",
                                 network=True, limits={
                                     "cpu_seconds": 1, "memory_mb": 16, "files": 16,
                                     "processes": 1, "file_size_mb": 1, "output_kb": 1}),
     True, None),
    ("exec-output-reply", exec_doc(output="reply"), True, None),
    ("exec-shell-command", exec_doc(command="grep -q x && exit 0 || exit 75"), True, None),
    ("exec-missing", {"name": "r", "kind": "exec"}, False, "/exec"),
    ("exec-with-webhook", {**exec_doc(), "webhook": robot_doc("r")["webhook"]}, False,
     "/webhook"),
    ("exec-command-missing", {"name": "r", "kind": "exec", "exec": {}}, False,
     "/exec/command"),
    ("exec-command-newline", exec_doc(command="a\nb"), False, "/exec/command"),
    ("exec-command-blank", exec_doc(command="   "), False, "/exec/command"),
    ("exec-command-4097", exec_doc(command="a" * 4097), False, "/exec/command"),
    ("exec-command-non-ascii", exec_doc(command="/bin/r\u00e9"), False, "/exec/command"),
    ("exec-shell-yes", exec_doc(shell="yes"), False, "/exec/shell"),
    ("exec-user-uppercase", exec_doc(user="Root"), False, "/exec/user"),
    ("exec-group-33", exec_doc(group="g" * 33), False, "/exec/group"),
    ("exec-directory-relative", exec_doc(directory="robots/t"), False, "/exec/directory"),
    ("exec-output-mail", exec_doc(output="mail"), False, "/exec/output"),
    ("exec-sandbox-docker", exec_doc(sandbox="docker"), False, "/exec/sandbox"),
    ("exec-network-1", exec_doc(network=1), False, "/exec/network"),
    ("exec-unknown-field", exec_doc(env={"A": "b"}), False, "/exec/env"),
    ("exec-limits-files-15", exec_doc(limits={"files": 15}), False, "/exec/limits/files"),
    ("exec-limits-cpu-0", exec_doc(limits={"cpu_seconds": 0}), False,
     "/exec/limits/cpu_seconds"),
    ("exec-limits-memory-string", exec_doc(limits={"memory_mb": "64"}), False,
     "/exec/limits/memory_mb"),
    ("exec-limits-unknown", exec_doc(limits={"swap_mb": 1}), False, "/exec/limits/swap_mb"),
    ("drop", {"name": "r", "kind": "drop"}, True, None),
    ("drop-empty-section", {"name": "r", "kind": "drop", "drop": {}}, True, None),
    ("drop-field", {"name": "r", "kind": "drop", "drop": {"log": True}}, False, "/drop/log"),
    ("drop-with-exec", {**exec_doc(), "kind": "drop"}, False, "/exec"),
    ("autoreply", autoreply_doc(), True, None),
    ("autoreply-everything", autoreply_doc(subject="Away: {subject}", period="0030d"), True,
     None),
    ("autoreply-period-1m", autoreply_doc(period="1m"), True, None),
    ("autoreply-period-8760h", autoreply_doc(period="8760h"), True, None),
    ("autoreply-unicode-subject", autoreply_doc(subject="\u00c0 " * 450), True, None),
    ("autoreply-missing", {"name": "r", "kind": "autoreply"}, False, "/autoreply"),
    ("autoreply-text-missing", {"name": "r", "kind": "autoreply", "autoreply": {}}, False,
     "/autoreply/text"),
    ("autoreply-text-empty", autoreply_doc(text=""), False, "/autoreply/text"),
    ("autoreply-subject-newline", autoreply_doc(subject="a\nb"), False, "/autoreply/subject"),
    ("autoreply-subject-901", autoreply_doc(subject="\u00c0" * 901), False,
     "/autoreply/subject"),
    ("autoreply-period-59s", autoreply_doc(period="59s"), False, "/autoreply/period"),
    ("autoreply-period-366d", autoreply_doc(period="366d"), False, "/autoreply/period"),
    ("autoreply-period-number", autoreply_doc(period=7), False, "/autoreply/period"),
    ("autoreply-unknown", autoreply_doc(cc="x@y"), False, "/autoreply/cc"),
    ("forward", forward_doc(), True, None),
    ("forward-everything", forward_doc(to=["a@x.test", "B.c+d=e@Y-1.example", "x@y"],
                                       envelope_sender="fixed", sender="bounces@x.test",
                                       hop_limit=100), True, None),
    ("forward-keep", forward_doc(envelope_sender="keep", hop_limit=1), True, None),
    ("forward-srs", forward_doc(envelope_sender="srs", hop_limit=25.0), True, None),
    ("forward-50", forward_doc(to=[f"r{i}@x.test" for i in range(50)]), True, None),
    ("forward-to-local-64", forward_doc(to=["l" * 64 + "@x.test"]), True, None),
    ("forward-to-254", forward_doc(to=["l@" + ".".join(["d" * 63] * 3) + "." + "d" * 60]),
     True, None),
    ("forward-missing", {"name": "r", "kind": "forward"}, False, "/forward"),
    ("forward-not-object", {"name": "r", "kind": "forward", "forward": ["b@x.test"]}, False,
     "/forward"),
    ("forward-with-drop", {**forward_doc(), "drop": {}}, False, "/drop"),
    ("drop-with-forward", {"name": "r", "kind": "drop", "forward": forward_doc()["forward"]},
     False, "/forward"),
    ("forward-to-missing", {"name": "r", "kind": "forward", "forward": {}}, False,
     "/forward/to"),
    ("forward-to-empty", forward_doc(to=[]), False, "/forward/to"),
    ("forward-to-string", forward_doc(to="bob@example.org"), False, "/forward/to"),
    ("forward-to-51", forward_doc(to=[f"r{i}@x.test" for i in range(51)]), False,
     "/forward/to"),
    ("forward-to-no-at", forward_doc(to=["a@x.test", "bob"]), False, "/forward/to/1"),
    ("forward-to-display-name", forward_doc(to=["Bob <bob@x.test>"]), False, "/forward/to/0"),
    ("forward-to-newline", forward_doc(to=["bob@x.test\n"]), False, "/forward/to/0"),
    ("forward-to-local-65", forward_doc(to=["l" * 65 + "@x.test"]), False, "/forward/to/0"),
    ("forward-to-255", forward_doc(to=["l@" + ".".join(["d" * 63] * 3) + "." + "d" * 61]),
     False, "/forward/to/0"),
    ("forward-to-double-dot", forward_doc(to=["a..b@x.test"]), False, "/forward/to/0"),
    ("forward-to-hyphen-label", forward_doc(to=["a@-x.test"]), False, "/forward/to/0"),
    ("forward-to-ip-literal", forward_doc(to=["a@[192.0.2.1]"]), False, "/forward/to/0"),
    ("forward-to-utf8", forward_doc(to=["j\u00f6rg@x.test"]), False, "/forward/to/0"),
    ("forward-to-number", forward_doc(to=[7]), False, "/forward/to/0"),
    ("forward-envelope-sender-original", forward_doc(envelope_sender="original"), False,
     "/forward/envelope_sender"),
    ("forward-fixed-without-sender", forward_doc(envelope_sender="fixed"), False,
     "/forward/sender"),
    ("forward-sender-without-fixed", forward_doc(sender="bounces@x.test"), False,
     "/forward/sender"),
    ("forward-keep-with-sender", forward_doc(envelope_sender="keep", sender="b@x.test"), False,
     "/forward/sender"),
    ("forward-fixed-sender-empty", forward_doc(envelope_sender="fixed", sender=""), False,
     "/forward/sender"),
    ("forward-fixed-sender-bad", forward_doc(envelope_sender="fixed", sender="<>"), False,
     "/forward/sender"),
    ("forward-hop-limit-0", forward_doc(hop_limit=0), False, "/forward/hop_limit"),
    ("forward-hop-limit-101", forward_doc(hop_limit=101), False, "/forward/hop_limit"),
    ("forward-hop-limit-2.5", forward_doc(hop_limit=2.5), False, "/forward/hop_limit"),
    ("forward-hop-limit-string", forward_doc(hop_limit="25"), False, "/forward/hop_limit"),
    ("forward-unknown", forward_doc(cc=["c@x.test"]), False, "/forward/cc"),
    ("webhook-missing", {"name": "r", "kind": "webhook"}, False, "/webhook"),
    ("webhook-not-object", {"name": "r", "kind": "webhook", "webhook": "http://h"}, False,
     "/webhook"),
    ("ordered-yes", with_fields(ordered="yes"), False, "/ordered"),
    ("ordered-1", with_fields(ordered=1), False, "/ordered"),
    ("concurrency-0", with_fields(concurrency=0), False, "/concurrency"),
    ("concurrency-2.5", with_fields(concurrency=2.5), False, "/concurrency"),
    ("concurrency-10001", with_fields(concurrency=10001), False, "/concurrency"),
    ("concurrency-string", with_fields(concurrency="8"), False, "/concurrency"),
    ("timeout-99ms", with_fields(timeout="99ms"), False, "/timeout"),
    ("timeout-61m", with_fields(timeout="61m"), False, "/timeout"),
    ("timeout-1d", with_fields(timeout="1d"), False, "/timeout"),
    ("timeout-5x", with_fields(timeout="5x"), False, "/timeout"),
    ("timeout-number", with_fields(timeout=10), False, "/timeout"),
    ("spam-drop", with_fields(spam="drop"), False, "/spam"),
    ("spam-upper", with_fields(spam="SKIP"), False, "/spam"),
    ("spam-true", with_fields(spam=True), False, "/spam"),
    ("spam-null", with_fields(spam=None), False, "/spam"),
    ("spam-in-webhook", with_webhook(spam="skip"), False, "/webhook/spam"),
    ("url-ftp", robot_doc("r", url="ftp://h/"), False, "/webhook/url"),
    ("url-userinfo", robot_doc("r", url="https://u:p@h/"), False, "/webhook/url"),
    ("url-fragment", robot_doc("r", url="https://h/#x"), False, "/webhook/url"),
    ("url-port-65536", robot_doc("r", url="https://h:65536/"), False, "/webhook/url"),
    ("url-relative", robot_doc("r", url="/hooks"), False, "/webhook/url"),
    ("url-newline", robot_doc("r", url="https://h/\n"), False, "/webhook/url"),
    ("url-2049", robot_doc("r", url="https://h/" + "a" * 2039), False, "/webhook/url"),
    ("url-missing", {"name": "r", "kind": "webhook", "webhook": {"secret": SECRET}}, False,
     "/webhook/url"),
    ("secret-15", with_webhook(secret="a" * 15), False, "/webhook/secret"),
    ("secret-non-ascii", with_webhook(secret="\u00e9" * 8), False, "/webhook/secret"),
    ("secret-1025", with_webhook(secret="s" * 1025), False, "/webhook/secret"),
    ("secret-null", with_webhook(secret=None), False, "/webhook/secret"),
    ("format-xml", with_webhook(format="xml"), False, "/webhook/format"),
    ("allow-private-yes", with_webhook(allow_private="yes"), False, "/webhook/allow_private"),
    ("webhook-actions", with_webhook(actions=True), True, None),
    ("webhook-actions-1", with_webhook(actions=1), False, "/webhook/actions"),
    ("array", [robot_doc("r")], False, "/"),
    ("not-json", b'{"name": "r", kind: webhook}', False, "/"),
]


def schema_accepts(raw):
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=[c[0] for c in VALIDATION_CASES])
def test_robot_validate_agrees_with_the_schema(stack_with_redis, case):
    name, doc, accepted, pointer = case
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    res = ctl(stack_with_redis.config, "robot", "validate", "-", input=raw)
    assert schema_accepts(raw) == accepted, f"schema verdict on {name}"
    assert (res.returncode == 0) == accepted, err(res)
    if accepted:
        assert out(res) == f"ok: {doc['name']}\n"
    else:
        assert res.returncode == 1
        assert err(res).startswith(f"mailrobotctl: stdin: {pointer}: "), err(res)


def test_duplicate_keys_are_refused_though_a_schema_cannot_see_them(stack_with_redis):
    raw = b'{"name": "a", "name": "b", "kind": "webhook", "webhook": {}}'
    res = ctl(stack_with_redis.config, "robot", "validate", "-", input=raw)
    assert res.returncode == 1
    assert "duplicate object key" in err(res)


# --- routes ---------------------------------------------------------------------------------


def route_show(site, recipient):
    res = ctl(site.config, "route", "show", recipient)
    fields = dict(line.split(None, 1) for line in out(res).splitlines())
    return res, fields


def test_routes_and_their_precedence(site):
    for name in ("exact", "plain", "domain", "fallback"):
        apply(site, robot_doc(name))
    r, p = site.redis, site.prefix
    version = int(r.get(f"{p}:robots:version"))
    for address, robot in (("Bob+Urgent@X.test", "exact"), ("bob@x.test", "plain"),
                           ("@x.test", "domain"), ("*", "fallback")):
        res = ctl(site.config, "route", "add", address, robot)
        assert res.returncode == 0, err(res)
        assert out(res) == f"added route {address.lower()} -> {robot}\n"
    assert r.get(f"{p}:route:bob+urgent@x.test") == b"exact"
    assert r.smembers(f"{p}:routes") == {b"bob+urgent@x.test", b"bob@x.test", b"@x.test", b"*"}
    assert int(r.get(f"{p}:robots:version")) == version + 4

    listing = ctl(site.config, "route", "list")
    assert out(listing).splitlines() == ["* -> fallback", "@x.test -> domain",
                                         "bob+urgent@x.test -> exact", "bob@x.test -> plain"]

    expectations = [
        ("bob+urgent@x.test", "bob+urgent@x.test", "exact", "urgent"),
        ("BOB+URGENT@x.TEST", "bob+urgent@x.test", "exact", "urgent"),
        ("bob+other@x.test", "bob@x.test", "plain", "other"),
        ("bob@x.test", "bob@x.test", "plain", None),
        ("bob+a+b@x.test", "bob@x.test", "plain", "a+b"),
        ("alice@x.test", "@x.test", "domain", None),
        ("alice+tag@x.test", "@x.test", "domain", "tag"),
        ("+bob@x.test", "@x.test", "domain", None),
        ("bob@y.test", "*", "fallback", None),
    ]
    for recipient, route, robot, extension in expectations:
        res, fields = route_show(site, recipient)
        assert res.returncode == 0, err(res)
        assert fields["recipient"] == recipient.lower()
        assert fields["route"].split()[0] == route, recipient
        assert fields["robot"] == robot, recipient
        assert fields.get("extension") == extension, recipient

    # Deleting the more specific routes falls through to the next.
    res = ctl(site.config, "route", "del", "bob@x.test")
    assert res.returncode == 0, err(res)
    assert out(res) == "deleted route bob@x.test -> plain\n"
    assert route_show(site, "bob+other@x.test")[1]["robot"] == "domain"
    assert ctl(site.config, "route", "del", "@X.test").returncode == 0
    assert route_show(site, "bob+other@x.test")[1]["robot"] == "fallback"
    assert ctl(site.config, "route", "del", "*").returncode == 0
    res, fields = route_show(site, "bob+other@x.test")
    assert res.returncode == 1
    assert "robot" not in fields
    assert err(res) == ("mailrobotctl: route show bob+other@x.test: no route: mail to "
                        "bob+other@x.test is dead-lettered (no_route)\n")
    res = ctl(site.config, "route", "del", "*")
    assert res.returncode == 1
    assert err(res) == "mailrobotctl: route del *: no such route\n"
    assert r.smembers(f"{p}:routes") == {b"bob+urgent@x.test"}


def test_a_route_to_a_missing_robot_is_refused(site):
    res = ctl(site.config, "route", "add", "bob@x.test", "nosuch")
    assert res.returncode == 1
    assert err(res) == ("mailrobotctl: route add bob@x.test: no robot nosuch (apply it first "
                        "with 'mailrobotctl robot apply')\n")
    assert site.redis.keys(f"{site.prefix}:*") == []


def test_route_addresses_are_checked(site):
    apply(site, robot_doc("r"))
    for bad in ("bob", "bob@", "@", "a b@x.test", "bob@x..test", "bob@-x.test/", "a@b@c",
                "**", "x" * 65 + "@x.test"):
        res = ctl(site.config, "route", "add", bad, "r")
        assert res.returncode == 1, bad
        assert "expected local@domain, @domain or *" in err(res) or "longer" in err(res), bad
    res = ctl(site.config, "route", "show", "@x.test")
    assert res.returncode == 1
    assert "bad recipient '@x.test': expected local@domain" in err(res)
    assert ctl(site.config, "route", "add", "a@x.test", "R").returncode == 1
    assert site.redis.smembers(f"{site.prefix}:routes") == set()


def test_robot_delete_refuses_while_routes_point_to_it(site):
    apply(site, robot_doc("tickets"))
    assert ctl(site.config, "route", "add", "help@x.test", "tickets").returncode == 0
    assert ctl(site.config, "route", "add", "@x.test", "tickets").returncode == 0
    res = ctl(site.config, "robot", "delete", "tickets")
    assert res.returncode == 1
    assert err(res) == ("mailrobotctl: robot delete tickets: 2 route(s) point to it: @x.test, "
                        "help@x.test (delete them first, or use --force to leave them "
                        "pointing at a missing robot)\n")
    assert site.redis.get(f"{site.prefix}:robot:tickets") is not None

    res = ctl(site.config, "robot", "delete", "tickets", "--force")
    assert res.returncode == 0, err(res)
    assert out(res) == "deleted robot tickets (routes still pointing at it: @x.test, " \
                       "help@x.test)\n"
    assert out(ctl(site.config, "route", "list")).splitlines() == [
        "@x.test -> tickets  (robot missing)", "help@x.test -> tickets  (robot missing)"]
    res, fields = route_show(site, "help@x.test")
    assert res.returncode == 1
    assert fields["robot"] == "tickets  (missing)"


# --- dead letters ---------------------------------------------------------------------------


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[
        :-3] + "Z"


def inbound_headers(mr_id, recipient="bob@x.test", queue_id="4Xyz1"):
    """The headers the ingest writes (SPEC §3, record.h), in its order."""
    return [("mr.v", b"1"), ("mr.id", mr_id.encode()), ("mr.sender", b"alice@example.org"),
            ("mr.recipient", recipient.encode()), ("mr.original_recipient", recipient.encode()),
            ("mr.queue_id", queue_id.encode()), ("mr.client_address", b"192.0.2.7"),
            ("mr.helo", b"mx.example.org"), ("mr.sasl_username", b""),
            ("mr.received_at", b"2026-11-29T10:00:00.000Z")]


def dead_letter(mr_id, robot, kind, error, dead_at_ms, recipient="bob@x.test"):
    """Headers of a dead letter as record.h says a worker writes them: the
    inbound headers unchanged, then mr.robot (none for no_route), mr.attempt,
    mr.error, mr.error_kind, mr.dead_at, mr.source."""
    headers = inbound_headers(mr_id, recipient)
    if robot is not None:
        headers.append(("mr.robot", robot.encode()))
    headers += [("mr.attempt", b"5"), ("mr.error", error.encode()),
                ("mr.error_kind", kind.encode()), ("mr.dead_at", rfc3339(dead_at_ms).encode()),
                ("mr.source", b"x.retry.6h/0/17")]
    return headers


def produce(brokers, topic, records):
    """records: (key, value, headers, timestamp ms or None)."""
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    for key, value, headers, ts in records:
        kwargs = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value, headers=headers, **kwargs)
    assert p.flush(30) == 0


def replayed(site, where, expect):
    return read_records(site.brokers, f"{site.prefix}.inbound", where=where, expect=expect,
                        timeout=30)


def test_dlq_list_show_and_replay(site):
    site.topics()
    now = int(time.time() * 1000)
    ids = [f"{i:02d}" + "ab" * 15 for i in range(4)]
    value = b"From: a@example.org\r\nSubject: caf\xc3\xa9\r\n\r\n\x00\xff binary\r\n"
    letters = [
        (b"bob@x.test <root@example.org>", value,
         dead_letter(ids[0], "tickets", "permanent", "HTTP 404 from https://app/hook", now - 4000),
         now - 4000),
        (b"nobody@x.test <r2@example.org>", b"Subject: x\n\nno route\n",
         dead_letter(ids[1], None, "no_route", "no route for nobody@x.test", now - 3000,
                     recipient="nobody@x.test"), now - 3000),
        (b"bob@x.test <r3@example.org>", b"Subject: long\n\n",
         dead_letter(ids[2], "tickets", "exhausted", "HTTP 503: " + "z" * 200, now - 2000),
         now - 2000),
        # The same message dead-lettered again later (after a replay): newest wins.
        (b"bob@x.test <root@example.org>", value + b"(2)",
         dead_letter(ids[0], "tickets", "permanent", "HTTP 410 Gone", now - 1000), now - 1000),
    ]
    produce(site.brokers, f"{site.prefix}.dead", letters)

    listing = ctl(site.config, "dlq", "list")
    assert listing.returncode == 0, err(listing)
    lines = out(listing).splitlines()
    assert len(lines) == 4
    assert lines[0].split("  ") == [ids[0], "tickets", "permanent", rfc3339(now - 4000),
                                    "bob@x.test", "HTTP 404 from https://app/hook"]
    assert lines[1].split("  ") == [ids[1], "-", "no_route", rfc3339(now - 3000),
                                    "nobody@x.test", "no route for nobody@x.test"]
    assert lines[2].split("  ")[-1] == "HTTP 503: " + "z" * 67 + "..."
    limited = ctl(site.config, "dlq", "list", "--limit", "2")
    assert out(limited).splitlines() == lines[2:]

    shown = ctl(site.config, "dlq", "show", ids[0])
    assert shown.returncode == 0, err(shown)
    text = out(shown)
    assert "  mr.error: HTTP 410 Gone\n" in text and "HTTP 404" not in text
    for name, val in letters[3][2]:
        assert f"  {name}: {val.decode()}\n" in text
    assert f"  value: {len(value) + 3} bytes\n" in text
    assert "  | Subject: caf\\xc3\\xa9\\x0d\n" in text
    missing = ctl(site.config, "dlq", "show", "f" * 32)
    assert missing.returncode == 1
    assert f"no dead letter with mr.id {'f' * 32} in {site.prefix}.dead" in err(missing)

    # Replay one: the newest dead letter with that id, byte for byte, with the
    # inbound headers and mr.robot, the attempt headers dropped, mr.replayed=dlq.
    res = ctl(site.config, "dlq", "replay", ids[0])
    assert res.returncode == 0, err(res)
    assert out(res) == f"replayed 1 dead letter(s) from {site.prefix}.dead to " \
                       f"{site.prefix}.inbound\n"
    [rec] = replayed(site, None, 1)
    assert rec.key == letters[3][0]
    assert rec.value == letters[3][1]
    assert rec.headers == dict(inbound_headers(ids[0]) + [("mr.robot", b"tickets"),
                                                          ("mr.replayed", b"dlq")])
    assert_header_order(site, rec, [n for n, _ in inbound_headers(ids[0])]
                        + ["mr.robot", "mr.replayed"])

    res = ctl(site.config, "dlq", "replay", "--all")
    assert res.returncode == 0, err(res)
    assert out(res).startswith("replayed 4 dead letter(s)")
    records = replayed(site, None, 5)
    assert len(records) == 5
    no_route = [r for r in records if r.h("mr.id") == ids[1]]
    assert len(no_route) == 1
    assert no_route[0].headers == dict(inbound_headers(ids[1], "nobody@x.test")
                                       + [("mr.replayed", b"dlq")])
    assert no_route[0].value == b"Subject: x\n\nno route\n"
    assert ctl(site.config, "dlq", "replay", "f" * 32).returncode == 1
    assert ctl(site.config, "dlq", "replay").returncode == 2
    assert ctl(site.config, "dlq", "replay", ids[0], "--all").returncode == 2


def assert_header_order(site, rec, names):
    """The harness keeps headers as a dict; read the order with our own
    `kafka read`, which prints them as they are."""
    res = ctl(site.config, "kafka", "read", "--topic", "inbound", "--header",
              f"mr.id={rec.h('mr.id')}", "--count", "1", "--timeout", "20s")
    printed = [line.split(":", 1)[0].strip() for line in out(res).splitlines()
               if line.startswith("  mr.")]
    assert printed == names


def test_replay_of_a_time_window(site):
    site.topics()
    base = int(time.time() * 1000) - 3600 * 1000
    records = []
    for i, minutes in enumerate((0, 10, 20, 30, 40)):
        headers = inbound_headers(f"{i:032x}", queue_id=f"Q{i}")
        if i == 2:
            headers.append(("mr.robot", b"previous"))
        if i == 1:
            headers.append(("mr.replay", b"r-old"))
        records.append((f"bob@x.test <m{i}@example.org>".encode(), b"Subject: %d\n\n\xfe\n" % i,
                        headers, base + minutes * 60000))
    produce(site.brokers, f"{site.prefix}.inbound", records)

    start = datetime.fromtimestamp((base + 10 * 60000) / 1000, timezone(timedelta(hours=2)))
    res = ctl(site.config, "replay", "--topic", "inbound",
              "--from", start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00",
              "--to", rfc3339(base + 30 * 60000), "--robot", "tickets")
    assert res.returncode == 0, err(res)
    m = re.fullmatch(r"replay (r\d{8}T\d{6}Z-[0-9a-f]{6}): 2 record\(s\) from "
                     + re.escape(f"{site.prefix}.inbound") + r" \[(\S+), (\S+)\) republished to "
                     + re.escape(f"{site.prefix}.inbound") + "\n", out(res))
    assert m, out(res)
    replay_id = m.group(1)
    assert (m.group(2), m.group(3)) == (rfc3339(base + 10 * 60000), rfc3339(base + 30 * 60000))

    back = replayed(site, lambda r: r.headers.get("mr.replay") == replay_id.encode(), 2)
    assert len(back) == 2
    by_id = {r.h("mr.id"): r for r in back}
    assert set(by_id) == {f"{1:032x}", f"{2:032x}"}
    for i in (1, 2):
        rec, (key, value, headers, _) = by_id[f"{i:032x}"], records[i]
        assert rec.key == key and rec.value == value
        expected = dict(inbound_headers(f"{i:032x}", queue_id=f"Q{i}"))
        expected.update({"mr.replay": replay_id.encode(), "mr.robot": b"tickets"})
        assert rec.headers == expected
    # Nothing else came back: the inbound topic holds the 5 originals and 2 replays.
    assert len(replayed(site, None, None)) == 7

    # Relative times, without --robot: the whole hour and more, robots kept.
    res = ctl(site.config, "replay", "--from", "-2h")
    assert res.returncode == 0, err(res)
    assert ": 7 record(s) from" in out(res)
    replay_id = out(res).split()[1].rstrip(":")
    again = replayed(site, lambda r: r.headers.get("mr.replay") == replay_id.encode(), 7)
    assert sorted(r.h("mr.robot") for r in again) == ["", "", "", "", "previous", "tickets",
                                                      "tickets"]

    for args, message in (
            (("--from", "2026-02-30T00:00:00Z"), "bad time '2026-02-30T00:00:00Z'"),
            (("--from", "-1h", "--to", "-2h"), "--from -1h is not before --to -2h"),
            (("--topic", "events", "--from", "-1h"), f"{site.prefix}.events does not hold")):
        res = ctl(site.config, "replay", *args)
        assert res.returncode == 1 and message in err(res), err(res)
    assert ctl(site.config, "replay", "--to", "now").returncode == 2
    assert ctl(site.config, "replay", "--from", "-1h", "--robot", "Bad!").returncode == 2


# --- tail -----------------------------------------------------------------------------------


def event(type_, mr_id, **fields):
    return {"v": 1, "type": type_, "at": "2026-11-29T10:00:01.123Z", "id": mr_id,
            "worker": "host:42", **fields}


def test_tail_prints_the_events(site):
    site.topics()
    events = [
        event("received", "id1", recipient="bob@x.test", source="x.inbound/0/5", robot=None),
        event("routed", "id1", recipient="bob+u@x.test", robot="tickets", route="bob@x.test",
              extension="u"),
        event("delivered", "id1", recipient="bob@x.test", robot="tickets", http_status=200,
              duration_ms=35, attempt=1),
        event("retried", "id2", recipient="bob@x.test", robot="tickets", attempt=1,
              error="HTTP 503\x1b[2J", retry_topic="x.retry.1m", http_status=503),
        event("dead", "id3", recipient="nobody@x.test", robot=None, error="no route",
              error_kind="no_route"),
    ]
    raw = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    # One key: one partition, so the order is kept.
    produce(site.brokers, f"{site.prefix}.events", [(b"k", r, [], None) for r in raw])

    res = ctl(site.config, "tail", "--from", "beginning", "--json", "--count", "5", timeout=60)
    assert res.returncode == 0, err(res)
    assert res.stdout.splitlines() == raw

    res = ctl(site.config, "tail", "--from", "beginning", "--count", "5", timeout=60)
    assert res.returncode == 0, err(res)
    assert out(res).splitlines() == [
        "10:00:01.123 received - id1 bob@x.test from x.inbound/0/5",
        "10:00:01.123 routed tickets id1 bob+u@x.test via bob@x.test +u",
        "10:00:01.123 delivered tickets id1 bob@x.test 200 35ms",
        "10:00:01.123 retried tickets id2 bob@x.test attempt 1 503 -> x.retry.1m: "
        "HTTP 503\\x1b[2J",
        "10:00:01.123 dead - id3 nobody@x.test no_route: no route",
    ]


def test_tail_from_the_end_follows_new_events(site):
    site.topics()
    proc = subprocess.Popen([str(CTL), "-C", str(site.config), "tail", "--json", "--count", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        # Until tail has its partitions it does not see what is produced: retry.
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            produce(site.brokers, f"{site.prefix}.events",
                    [(b"k", json.dumps(event("skipped", "late")).encode(), [], None)])
            time.sleep(0.5)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert json.loads(stdout) == event("skipped", "late")


def test_tail_stops_on_sigterm(site):
    site.topics()
    proc = subprocess.Popen([str(CTL), "-C", str(site.config), "tail"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    time.sleep(1.5)
    proc.terminate()
    try:
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
