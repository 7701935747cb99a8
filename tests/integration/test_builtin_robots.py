"""The built-in robots drop, autoreply and forward (SPEC §7) against a real worker,
Kafka and Redis: what each does with a message, the RFC 3834 matrix of
mail an autoreply must not answer, and "once per sender per period" kept
in Redis across a worker restart. Replies are read from the outbound topic
and parsed with Python's email package."""

import base64
import hashlib
import hmac
import re
import time
from email import policy
from email.parser import BytesParser

import pytest

from exec_harness import DOMAIN, events, exec_stack, records_of, send

SRS_DOMAIN = "fwd.example.test"
SRS_SECRET = "a-test-secret-of-some-length"
from mailrobot_harness import start_worker, stop_worker


@pytest.fixture(scope="module")
def env(kafka):
    yield from exec_stack(kafka, srs_domain=SRS_DOMAIN, srs_secret=SRS_SECRET)


def add(env, name, kind, section=None):
    doc = {"name": name, "kind": kind}
    if section is not None:
        doc[kind] = section
    return env.robots.put(doc)


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


# --- forward ---------------------------------------------------------------------


def forwarded(env, mr_id):
    delivered(env, mr_id)
    [out] = replies(env, mr_id)
    assert out.h("mr.kind") == "forward"
    return out


def srs_hash(timestamp, domain, local):
    """libsrs2's hash, computed here independently of srs.c."""
    mac = hmac.new(SRS_SECRET.encode(), (timestamp + domain + local).lower().encode(),
                   hashlib.sha1).digest()
    return base64.b64encode(mac).decode()[:4]


def srs_timestamp(now=None):
    days = int((now or time.time()) // 86400) % 1024
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return alphabet[days >> 5] + alphabet[days & 31]


def test_forward_keeps_the_message_and_marks_it_delivered_here(env):
    rcpt = add(env, "fwd-keep", "forward", {"to": ["dest1@example.net", "dest2@example.net"],
                                            "envelope_sender": "keep"})
    mr_id, msg = send(env, rcpt, subject="Weiterleitung", sender="alice@example.org")
    out = forwarded(env, mr_id)
    assert out.h("mr.mail_from") == "alice@example.org"
    assert [v.decode() for k, v in out.header_list if k == "mr.rcpt_to"] == [
        "dest1@example.net", "dest2@example.net"]
    assert out.value == f"Delivered-To: {rcpt}\r\n".encode() + msg.replace(b"\n", b"\r\n")


def test_forward_with_a_fixed_sender_and_with_srs(env):
    rcpt = add(env, "fwd-fixed", "forward", {"to": ["dest@example.net"],
                                             "envelope_sender": "fixed",
                                             "sender": "forwarder@example.test"})
    mr_id, _ = send(env, rcpt, sender="alice@example.org")
    assert forwarded(env, mr_id).h("mr.mail_from") == "forwarder@example.test"

    rcpt = add(env, "fwd-srs", "forward", {"to": ["dest@example.net"]})   # srs: the default
    mr_id, _ = send(env, rcpt, sender="Alice.B@Example.org")
    mail_from = forwarded(env, mr_id).h("mr.mail_from")
    m = re.fullmatch(r"SRS0=(.{4})=(..)=Example\.org=Alice\.B@" + re.escape(SRS_DOMAIN),
                     mail_from)
    assert m, mail_from
    assert m.group(2) in (srs_timestamp(), srs_timestamp(time.time() - 60))
    assert m.group(1) == srs_hash(m.group(2), "Example.org", "Alice.B")

    mr_id, _ = send(env, rcpt, sender="")    # a bounce stays a bounce
    assert forwarded(env, mr_id).h("mr.mail_from") == ""


def test_bounce_to_an_srs_address_goes_back_to_the_original_sender(env):
    add(env, "srs-bounces", "forward", {"to": ["postmaster@example.test"]})
    env.redis.set(f"mailrobot:route:@{SRS_DOMAIN}", "srs-bounces")
    env.redis.sadd("mailrobot:routes", f"@{SRS_DOMAIN}")
    env.redis.incr("mailrobot:robots:version")
    tt = srs_timestamp()
    address = f"SRS0={srs_hash(tt, 'example.org', 'carol')}={tt}=example.org=carol@{SRS_DOMAIN}"
    mr_id, _ = send(env, address, sender="")
    out = forwarded(env, mr_id)
    assert out.h("mr.mail_from") == ""
    assert out.h("mr.rcpt_to") == "carol@example.org"

    forged = f"SRS0=AAAA={tt}=example.org=carol@{SRS_DOMAIN}"
    mr_id, _ = send(env, forged, sender="")
    evs = events(env, mr_id, "dead")
    assert "SRS address" in evs[-1]["error"], evs[-1]
    assert not replies(env, mr_id)


@pytest.mark.parametrize("headers,why", [
    ("Delivered-To: {rcpt}\n", "was delivered to"),
    ("Received: from a\nReceived: from b\nDelivered-To: x@example.net\nReceived: from c\n",
     "more than the robot's hop_limit 3"),
])
def test_forward_loops_are_dead_lettered(env, headers, why):
    rcpt = add(env, "fwd-loop", "forward", {"to": ["dest@example.net"], "hop_limit": 3,
                                            "envelope_sender": "keep"})
    mr_id, _ = send(env, rcpt, headers=headers.format(rcpt=rcpt))
    evs = events(env, mr_id, "dead")
    dead = [e for e in evs if e["type"] == "dead"][0]
    assert dead["error_kind"] == "loop" and why in dead["error"], dead
    assert not replies(env, mr_id)
