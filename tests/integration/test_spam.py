"""Spam at the door (docs/spam.md): the private Postfix with a private
rspamd as its milter (deploy/local/rspamd), mail sent over SMTP, and
robots whose "spam" policy acts on rspamd's verdict (X-Spam: Yes):

  skip     not delivered (event "skipped", no webhook call); normal mail
           to the same robot is delivered
  tag      webhook: the request header Mailrobot-Spam: yes and spam.flag
           true in the JSON; exec: the variable SPAM=yes
  deliver  delivered as any mail, spam.flag true in the JSON

The spam is rspamd's GTUBE test string in its "add header" variant
(YJS*C4JDBQADN1..., enabled by MR_RSPAMD_TEST_PATTERNS=yes): the standard
XJS*C4JDBQADN1... string is a hard-wired reject in rspamd, which this
instance would answer at SMTP time with 554 (checked too).
"""

import json
import re
import smtplib
import subprocess
import time

import pytest

from exec_harness import DOMAIN, events, exec_stack, outdir, recorded
from mailrobot_harness import free_port, read_records, unique

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
GTUBE_ADD_HEADER = "Y" + GTUBE[1:]
SECRET = "whsec_spam-tests-0123456789"


@pytest.fixture(scope="module")
def env(kafka):
    kafka.env.update(MR_DEMO_DOMAIN=DOMAIN, MR_RSPAMD_MILTER_PORT=str(free_port()),
                     MR_RSPAMD_PORT=str(free_port()), MR_RSPAMD_TEST_PATTERNS="yes")
    stack = exec_stack(kafka)
    env = next(stack)
    env.start("rspamd")
    env.start("postfix")
    conf = env.dir / "postfix" / "conf"
    checks = env.dir / "postfix" / "strip-spam-fields.regexp"
    checks.write_text("/^X-Spam(-[A-Za-z]+)?:/ IGNORE\n")
    for setting in (f"smtpd_milters = inet:127.0.0.1:{env.env['MR_RSPAMD_MILTER_PORT']}",
                    "milter_default_action = tempfail", "milter_protocol = 6",
                    f"header_checks = regexp:{checks}"):
        subprocess.run(["postconf", "-c", str(conf), "-e", setting], check=True)
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True)
    time.sleep(1)
    yield env
    next(stack, None)


def webhook_robot(env, name, path, **fields):
    doc = {"name": name, "kind": "webhook", **fields,
           "webhook": {"url": env.receiver.url(path), "secret": SECRET}}
    return env.robots.put(doc)


def smtp_send(env, rcpt, body, headers=""):
    """Sends over SMTP; returns the mailrobot record (found by a token in
    the Subject)."""
    token = unique("S")
    msg = (f"From: Alice <alice@example.org>\r\nTo: {rcpt}\r\nSubject: test {token}\r\n"
           f"Message-ID: <{token}@example.org>\r\n{headers}\r\n{body}\r\n")
    with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.org")
        smtp.sendmail("alice@example.org", [rcpt], msg.encode())
    [rec] = read_records(env.brokers, where=lambda r: token.encode() in r.value, timeout=90)
    return rec


def header_section(rec):
    return rec.value.split(b"\r\n\r\n" if b"\r\n\r\n" in rec.value else b"\n\n", 1)[0]


def fields(rec, name):
    """The values of the fields called name (exactly) in rec's header section."""
    return re.findall(rb"^" + re.escape(name.encode()) + rb":[ \t]*(.*?)\r?$",
                      header_section(rec), re.M | re.I)


def test_standard_gtube_is_rejected_by_rspamd_at_smtp_time(env):
    rcpt = webhook_robot(env, "standard", "/standard")
    with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.org")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("alice@example.org", [rcpt],
                          f"Subject: gtube\r\n\r\n{GTUBE}\r\n".encode())
    assert refused.value.smtp_code == 554


def test_skip_robot_skips_spam_and_delivers_normal_mail(env):
    rcpt = webhook_robot(env, "skipper", "/skipper", spam="skip")
    spam = smtp_send(env, rcpt, GTUBE_ADD_HEADER)
    assert fields(spam, "X-Spam") == [b"Yes"]
    evs = events(env, spam.h("mr.id"), "skipped")
    assert {"type": "skipped", "error": "spam (robot policy skip)"}.items() <= evs[-1].items()
    ham = smtp_send(env, rcpt, "Hello, a normal mail about the meeting.")
    assert fields(ham, "X-Spam") == []
    events(env, ham.h("mr.id"), "delivered")
    [req] = env.receiver.wait_for(1, "/skipper")
    assert req["headers"]["Mailrobot-Delivery"] == ham.h("mr.id")
    assert "Mailrobot-Spam" not in req["headers"]
    # rspamd writes X-Spam only on spam: its other fields, but no verdict.
    assert json.loads(req["body"])["spam"]["flag"] is None
    # The skipped message counts as done: never delivered later either.
    assert all(e["type"] != "delivered" for e in events(env, spam.h("mr.id"), "skipped"))


def test_tag_webhook_robot_gets_the_request_header(env):
    rcpt = webhook_robot(env, "tagger", "/tagger", spam="tag")
    spam = smtp_send(env, rcpt, GTUBE_ADD_HEADER)
    [req] = env.receiver.wait_for(1, "/tagger")
    assert req["headers"]["Mailrobot-Spam"] == "yes"
    assert json.loads(req["body"])["spam"]["flag"] is True
    assert req["headers"]["Mailrobot-Delivery"] == spam.h("mr.id")
    ham = smtp_send(env, rcpt, "Hello, a normal mail about the meeting.")
    events(env, ham.h("mr.id"), "delivered")
    [req] = env.receiver.wait_for(1, "/tagger",
                                  where=lambda r: r["headers"]["Mailrobot-Delivery"]
                                  == ham.h("mr.id"))
    assert "Mailrobot-Spam" not in req["headers"]


def test_deliver_robot_gets_spam_with_the_verdict_in_json(env):
    rcpt = webhook_robot(env, "deliverer", "/deliverer")
    smtp_send(env, rcpt, GTUBE_ADD_HEADER)
    [req] = env.receiver.wait_for(1, "/deliverer")
    assert "Mailrobot-Spam" not in req["headers"]
    spam = json.loads(req["body"])["spam"]
    assert spam["flag"] is True
    assert {"name": "X-Spam", "value": "Yes"} in spam["headers"]


def test_exec_tag_robot_sees_spam_yes(env):
    out = outdir(env, "exectag")
    rcpt = env.robots.add("exectag", f"{env.bin}/recorder.py {out}", spam="tag")
    smtp_send(env, rcpt, GTUBE_ADD_HEADER)
    [rec] = recorded(out)
    assert rec["env"]["SPAM"] == "yes"
    smtp_send(env, rcpt, "Hello, a normal mail about the meeting.")
    recs = recorded(out, 2)
    assert [r for r in recs if "SPAM" not in r["env"]]


def test_a_forged_verdict_from_the_sender_is_removed(env):
    rcpt = webhook_robot(env, "forged", "/forged", spam="skip")
    ham = smtp_send(env, rcpt, "Hello, a normal mail about the meeting.",
                    headers="X-Spam: Yes\r\nX-Spam-Flag: YES\r\n")
    assert fields(ham, "X-Spam") == [] and fields(ham, "X-Spam-Flag") == []
    events(env, ham.h("mr.id"), "delivered")
    spam = smtp_send(env, rcpt, GTUBE_ADD_HEADER, headers="X-Spam: No\r\nX-Spam-Flag: NO\r\n")
    assert fields(spam, "X-Spam") == [b"Yes"] and fields(spam, "X-Spam-Flag") == []
    events(env, spam.h("mr.id"), "skipped")


def test_mail_waits_at_the_sender_while_rspamd_is_down(env):
    """milter_default_action = tempfail: no filter, no mail accepted; the
    sender gets 4xx and keeps it (nothing lost, nothing bounced)."""
    rcpt = webhook_robot(env, "outage", "/outage", spam="skip")
    env.stop("rspamd")
    try:
        with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=60) as smtp:
            smtp.ehlo("client.example.org")
            with pytest.raises(smtplib.SMTPException) as refused:
                smtp.sendmail("alice@example.org", [rcpt], b"Subject: x\r\n\r\nHello.\r\n")
        code = getattr(refused.value, "smtp_code", None)
        if code is None:   # refused at RCPT: SMTPRecipientsRefused
            [(code, _)] = refused.value.recipients.values()
        assert 400 <= code < 500, refused.value
    finally:
        env.start("rspamd")
    ham = smtp_send(env, rcpt, "Hello again, the filter is back.")
    events(env, ham.h("mr.id"), "delivered")
