"""The built-in robots drop and autoreply (SPEC §7) against a real worker,
Kafka and Redis: what each does with a message, the RFC 3834 matrix of
mail an autoreply must not answer, and "once per sender per period" kept
in Redis across a worker restart. Replies are read from the outbound topic
and parsed with Python's email package."""

import json
from email import policy
from email.parser import BytesParser

import pytest

from exec_harness import DOMAIN, events, exec_stack, records_of, send
from mailrobot_harness import start_worker, stop_worker


@pytest.fixture(scope="module")
def env(kafka):
    yield from exec_stack(kafka)


def add(env, name, kind, section=None):
    doc = {"name": name, "kind": kind}
    if section is not None:
        doc[kind] = section
    r = env.redis
    r.set(f"mailrobot:robot:{name}", json.dumps(doc))
    r.sadd("mailrobot:robots", name)
    r.set(f"mailrobot:route:{name}@{DOMAIN}", name)
    r.sadd("mailrobot:routes", f"{name}@{DOMAIN}")
    r.incr("mailrobot:robots:version")
    return f"{name}@{DOMAIN}"


def delivered(env, mr_id):
    evs = events(env, mr_id, "delivered")
    assert not any(e["type"] in ("retried", "dead") for e in evs), evs
    return evs


def replies(env, mr_id):
    return records_of(env, "mailrobot.outbound", mr_id, expect=None, timeout=20)


def test_drop_accepts_and_discards(env):
    rcpt = add(env, "blackhole", "drop")
    mr_id, _ = send(env, rcpt)
    delivered(env, mr_id)
    assert not replies(env, mr_id)
    assert not records_of(env, "mailrobot.dead", mr_id, expect=None, timeout=10)


def test_autoreply_answers_once_with_a_null_sender(env):
    rcpt = add(env, "away", "autoreply", {
        "subject": "Away: {subject}", "period": "1h",
        "text": "I am away until Monday. You wrote about \u201c{subject}\u201d.\n"})
    mr_id, msg = send(env, rcpt, subject="Gr\u00fc\u00dfe und Fragen", sender="bob@example.org",
                      headers="Reply-To: Bob Home <bob@home.example>\n")
    delivered(env, mr_id)
    [out] = replies(env, mr_id)
    assert out.h("mr.kind") == "reply" and out.h("mr.mail_from") == ""
    assert out.h("mr.rcpt_to") == "bob@home.example"
    reply = BytesParser(policy=policy.default).parsebytes(out.value)
    original = BytesParser(policy=policy.default).parsebytes(msg)
    assert reply["Subject"] == "Away: Gr\u00fc\u00dfe und Fragen"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert reply["From"].addresses[0].addr_spec == rcpt
    assert reply.get_content().replace("\r\n", "\n") == (
        "I am away until Monday. You wrote about \u201cGr\u00fc\u00dfe und Fragen\u201d.\n")
    # The same sender again (any case): no second reply within the period.
    again, _ = send(env, rcpt, subject="Another one", sender="Bob@Example.org")
    delivered(env, again)
    assert not replies(env, again)
    # Another sender gets one.
    other, _ = send(env, rcpt, subject="Hello", sender="carol@example.org")
    delivered(env, other)
    [out] = replies(env, other)
    assert BytesParser(policy=policy.default).parsebytes(out.value)["Subject"] == "Away: Hello"


def test_autoreply_default_subject(env):
    rcpt = add(env, "plainaway", "autoreply", {"text": "Away.\n"})
    mr_id, _ = send(env, rcpt, subject="Lunch?", sender="dave@example.org")
    delivered(env, mr_id)
    [out] = replies(env, mr_id)
    assert BytesParser(policy=policy.default).parsebytes(out.value)["Subject"] == "Re: Lunch?"


@pytest.mark.parametrize("case,sender,headers", [
    ("null-sender", "", ""),
    ("mailer-daemon", "MAILER-DAEMON@example.org", ""),
    ("owner", "owner-list@example.org", ""),
    ("request", "list-request@example.org", ""),
    ("auto-submitted", "erin@example.org", "Auto-Submitted: auto-replied\n"),
    ("auto-generated", "erin@example.org", "Auto-Submitted: auto-generated\n"),
    ("precedence-bulk", "erin@example.org", "Precedence: bulk\n"),
    ("precedence-list", "erin@example.org", "Precedence: list\n"),
    ("precedence-junk", "erin@example.org", "Precedence: junk\n"),
    ("list-id", "erin@example.org", "List-Id: <news.example.org>\n"),
    ("list-unsubscribe", "erin@example.org", "List-Unsubscribe: <mailto:u@example.org>\n"),
    ("own-address", "self@" + DOMAIN, ""),
])
def test_autoreply_never_answers(env, case, sender, headers):
    name = "self" if case == "own-address" else f"rfc3834-{case}"
    rcpt = add(env, name, "autoreply", {"text": "Away.\n"})
    mr_id, _ = send(env, rcpt, sender=sender, headers=headers)
    delivered(env, mr_id)
    assert not replies(env, mr_id)
    assert env.redis.get(f"mailrobot:autoreply:{name}:{sender.lower()}") is None


def test_once_per_period_holds_across_a_worker_restart(env):
    rcpt = add(env, "steady", "autoreply", {"text": "Away.\n", "period": "1d"})
    first, _ = send(env, rcpt, sender="frank@example.org")
    delivered(env, first)
    assert len(replies(env, first)) == 1
    assert stop_worker(env.worker) == 0
    env.worker = start_worker(env)
    second, _ = send(env, rcpt, sender="frank@example.org")
    delivered(env, second)
    assert not replies(env, second)
    ttl_ms = env.redis.pttl("mailrobot:autoreply:steady:frank@example.org")
    assert 0 < ttl_ms <= 86400000
