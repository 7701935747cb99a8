"""Mail robots send, through the outbound sender, into a real Postfix (the
private instance) that delivers it with local(8) into an mbox file — the
whole way: inbound mail -> robot -> <prefix>.outbound -> sender -> SMTP ->
Postfix -> mailbox. A second Postfix listener that insists on STARTTLS,
with a certificate from a CA the test makes, checks TLS: trusted with
smtp_ca_file, refused (and retried, never lost) without it, and a relay
that offers no STARTTLS when smtp_starttls = required. What arrives is
parsed with Python's email and mailbox packages."""

import base64
import json
import mailbox
import subprocess
import time
from email import policy
from email.parser import BytesParser

import pytest

from exec_harness import events, exec_stack, send
from mailrobot_harness import free_port
from outbound_harness import Scenario, make_certificates

MAILBOX_DOMAIN = "relay.example.test"


def postconf(stack, *args):
    conf = stack.dir / "postfix" / "conf"
    subprocess.run(["postconf", "-c", str(conf), *args], check=True)


def reload_postfix(stack):
    conf = stack.dir / "postfix" / "conf"
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True)
    time.sleep(1)


@pytest.fixture(scope="module")
def env(kafka):
    """Postfix delivering MAILBOX_DOMAIN into mbox files (aliases to
    files), with a second, STARTTLS-only listener; the stack's worker
    sends to the first."""
    kafka.start("postfix")
    boxes = kafka.dir / "mailboxes"
    boxes.mkdir()
    boxes.chmod(0o777)
    conf = kafka.dir / "postfix" / "conf"
    aliases = conf / "aliases"
    aliases.write_text("".join(f"{u}: {boxes}/{u}.mbox\n"
                               for u in ("alice", "bob", "carol", "tls")))
    subprocess.run(["postalias", "-c", str(conf), f"hash:{aliases}"], check=True)
    certs = kafka.dir / "certs"
    certs.mkdir()
    make_certificates(certs)
    kafka.tls_port = free_port()
    postconf(kafka, "-e", f"mydestination = {MAILBOX_DOMAIN}", f"alias_maps = hash:{aliases}",
             f"alias_database = hash:{aliases}", "local_recipient_maps =",
             "default_privs = nobody", "smtpd_tls_received_header = yes")
    postconf(kafka, "-M", f"127.0.0.1:{kafka.tls_port}/inet=127.0.0.1:{kafka.tls_port} inet n - "
             f"n - - smtpd -o smtpd_tls_security_level=encrypt -o smtpd_tls_cert_file="
             f"{certs}/server.pem -o smtpd_tls_key_file={certs}/server.key")
    reload_postfix(kafka)
    kafka.boxes = boxes
    kafka.certs = certs
    kafka.redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    yield from exec_stack(kafka, smtp_relay=f"smtp://127.0.0.1:{kafka.smtp_port}",
                          smtp_starttls="optional", srs_domain="fwd.example.test",
                          srs_secret="another-secret-for-srs")


def mailbox_messages(env, user, count=1, timeout=60):
    path = env.boxes / f"{user}.mbox"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            msgs = list(mailbox.mbox(str(path)))
            if len(msgs) >= count:
                return msgs
        time.sleep(0.2)
    log = env.dir / "postfix" / "log" / "maillog"
    raise AssertionError(f"{count} messages expected in {path}; Postfix's log ends:\n"
                         + (log.read_text()[-3000:] if log.exists() else "(none)"))


def add_robot(env, name, kind, section):
    return env.robots.put({"name": name, "kind": kind, kind: section})


def test_autoreply_arrives_in_a_real_mailbox(env):
    rcpt = add_robot(env, "holiday", "autoreply", {
        "subject": "Abwesend: {subject}", "text": "Ich bin bis Montag weg. \u2014 Zoë\n"})
    mr_id, msg = send(env, rcpt, subject="Frage zu Öffnungszeiten",
                      sender=f"alice@{MAILBOX_DOMAIN}")
    evs = events(env, mr_id, "delivered")
    [m] = mailbox_messages(env, "alice")
    assert m["Return-Path"] == "<>"                       # null envelope sender
    assert m["Delivered-To"] == f"alice@{MAILBOX_DOMAIN}"
    assert str(m["Subject"]) != "Abwesend: Frage zu Öffnungszeiten"   # encoded on the wire
    parsed = BytesParser(policy=policy.default).parsebytes(m.as_bytes())
    assert parsed["Subject"] == "Abwesend: Frage zu Öffnungszeiten"
    assert parsed["Auto-Submitted"] == "auto-replied"
    original_id = f"<{msg.decode().split('Message-ID: <')[1].split('>')[0]}>"
    assert parsed["In-Reply-To"] == original_id
    assert original_id in parsed["References"]
    assert parsed.get_content() == "Ich bin bis Montag weg. \u2014 Zoë\n"
    effect = parsed["Message-ID"].strip("<>").split("@")[0]
    assert env.redis.get(f"mailrobot:sent:{effect}") is not None
    assert any(e["type"] == "delivered" for e in evs)


def test_exec_robot_mail_with_attachment_arrives_intact(env):
    pdf = b"%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n"
    out = {"actions": [{"type": "send",
                        "to": [{"name": "Bob Bär", "address": f"bob@{MAILBOX_DOMAIN}"}],
                        "subject": "Rechnung für März", "text": "Anbei.\n",
                        "html": "<p>Anbei.</p>",
                        "attachments": [{"filename": "Übersicht März.pdf",
                                         "content_type": "application/pdf",
                                         "content_base64": base64.b64encode(pdf).decode()}]}]}
    script = env.bin / "say-actions.sh"
    script.write_text("#!/bin/sh\ncat >/dev/null\ncat <<'EOF'\n" + json.dumps(out) + "\nEOF\n")
    script.chmod(0o755)
    rcpt = env.robots.add("biller", str(script), exec={"output": "actions"})
    mr_id, _ = send(env, rcpt)
    events(env, mr_id, "delivered")
    [m] = mailbox_messages(env, "bob")
    parsed = BytesParser(policy=policy.default).parsebytes(m.as_bytes())
    assert parsed["Subject"] == "Rechnung für März"
    assert parsed["To"].addresses[0].display_name == "Bob Bär"
    [att] = list(parsed.iter_attachments())
    assert att.get_filename() == "Übersicht März.pdf"
    assert att.get_content() == pdf
    assert parsed.get_body(("plain",)).get_content() == "Anbei.\n"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>Anbei.</p>"


def test_forward_arrives_with_an_srs_envelope_sender(env):
    rcpt = add_robot(env, "alias", "forward", {"to": [f"carol@{MAILBOX_DOMAIN}"]})
    mr_id, msg = send(env, rcpt, subject="Bitte weiterleiten", sender="dave@example.org")
    events(env, mr_id, "delivered")
    [m] = mailbox_messages(env, "carol")
    assert m["Return-Path"].startswith("<SRS0=") and m["Return-Path"].endswith(
        "=example.org=dave@fwd.example.test>"), m["Return-Path"]
    assert m.get_all("Delivered-To") == [f"carol@{MAILBOX_DOMAIN}", rcpt]
    parsed = BytesParser(policy=policy.default).parsebytes(m.as_bytes())
    assert parsed["Subject"] == "Bitte weiterleiten"
    assert parsed["Message-ID"] == msg.decode().split("Message-ID: ")[1].split("\n")[0]


def test_starttls_with_the_test_ca(env):
    s = Scenario(env, smtp_relay=f"smtp://127.0.0.1:{env.tls_port}", smtp_starttls="required",
                 smtp_ca_file=str(env.certs / "ca.pem")).start()
    try:
        effect = s.put([f"tls@{MAILBOX_DOMAIN}"], subject="over TLS")
        s.events(effect, "sent")
        [m] = mailbox_messages(env, "tls")
        assert m["Subject"] == "over TLS"
        assert "using TLS" in " ".join(m.get_all("Received")), m.get_all("Received")
    finally:
        s.stop()


def test_untrusted_certificate_is_retried_not_sent(env):
    s = Scenario(env, smtp_relay=f"smtp://127.0.0.1:{env.tls_port}",
                 smtp_starttls="required").start()
    try:
        effect = s.put([f"tls@{MAILBOX_DOMAIN}"], subject="must not arrive")
        evs = s.events(effect, "dead")
        retried = [e for e in evs if e["type"] == "retried"]
        assert retried and "certificate" in retried[0]["error"], retried
        assert "smtp_ca_file" in retried[0]["error"]
        assert s.dead(effect).h("mr.error_kind") == "exhausted"
    finally:
        s.stop()
    assert all(m["Subject"] != "must not arrive" for m in mailbox_messages(env, "tls"))


def test_required_starttls_not_offered_is_retried(env):
    s = Scenario(env, smtp_relay=f"smtp://127.0.0.1:{env.smtp_port}",
                 smtp_starttls="required").start()
    try:
        effect = s.put([f"alice@{MAILBOX_DOMAIN}"], subject="needs TLS")
        evs = s.events(effect, "retried")
        assert "does not offer STARTTLS" in [e for e in evs if e["type"] == "retried"][0]["error"]
    finally:
        s.stop()
