"""tests/mime/test_outbound_oracle.py - the mails robots send (outbound.h)
read back with Python's email package (BytesParser, policy.default), and
the actions parser held to schemas/actions-v1.json.

`outbound_tool` (from $MR_BUILD_DIR/tests, default /work/main/build) builds
the mails of an actions document or a reply-mode output for an original
message; every mail must

  1. have CRLF line ends only, no line over 998 bytes, only ASCII bytes
     (built mails; forwards keep the original's bytes),
  2. parse without defects,
  3. read back as what was asked: header fields decoded to the Unicode
     given (RFC 2047, RFC 2231 filenames), bodies decoded to the text
     given, In-Reply-To and References threading the original.

test_schema_agreement runs documents through both the C parser and a JSON
Schema validator: the C parser must accept exactly what the schema does
(the rules a schema cannot express are avoided there).
"""

import base64
import json
import os
import subprocess
from email import policy
from email.parser import BytesParser
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MR_BUILD_DIR", "/work/main/build")).resolve()
TOOL = BUILD / "tests" / "outbound_tool"
SCHEMA = json.loads((ROOT / "schemas" / "actions-v1.json").read_text())

CONTEXT = {"id": "0123456789abcdef0123456789abcdef", "robot": "helper",
           "recipient": "bot@robots.example", "sender": "alice@example.org",
           "hostname": "mx.robots.example", "size_limit": 10 * 1024 * 1024}

ORIGINAL = (b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\n"
            b"Reply-To: =?utf-8?b?5pel5pys?= <nihon@example.jp>\n"
            b"To: bot@robots.example\n"
            b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
            b"Message-ID: <orig-3@example.de>\n"
            b"References: <orig-1@example.de> <orig-2@example.de>\n"
            b"Date: Tue, 5 Mar 2024 13:03:22 +0100\n"
            b"\n"
            b"Hallo\n")


def run(mode, output, original=ORIGINAL, context=None, tmp_path=None):
    ctx = dict(CONTEXT, **(context or {}))
    (tmp_path / "ctx.json").write_text(json.dumps(ctx))
    (tmp_path / "original.eml").write_bytes(original)
    if not isinstance(output, bytes):
        output = json.dumps(output).encode()
    done = subprocess.run([str(TOOL), mode, str(tmp_path / "ctx.json"), str(tmp_path / "original.eml")],
                          input=output, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stderr == b"", done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


def mails(result):
    assert result["ok"], result.get("error")
    return [a for a in result["actions"] if "message_base64" in a]


def check_wire(raw, built=True):
    lines = raw.split(b"\r\n")
    assert raw.endswith(b"\r\n")
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, "bare LF or CR"
        if built:
            assert len(line) <= 998, f"line of {len(line)} bytes"
            assert all(b < 0x80 for b in line), f"8-bit byte in {line[:80]!r}"


def parse(mail, built=True):
    raw = base64.b64decode(mail["message_base64"])
    check_wire(raw, built)
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert not msg.defects, msg.defects
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
    return raw, msg


def text_of(part):
    return part.get_content().replace("\r\n", "\n")


def effect_message_id(mail):
    return f"<{mail['effect_id']}@{CONTEXT['hostname']}>"


def test_reply(tmp_path):
    text = "Danke für Ihre Nachricht!\n\n" + "Sehr lange Zeile " * 100 + "\nEnde — 終わり\n"
    html = "<p>Danke für Ihre Nachricht!</p>\n"
    data = bytes(range(256)) * 10
    result = run("actions", {"actions": [{
        "type": "reply", "text": text, "html": html, "headers": {"X-Ticket": "Nr. 42 — offen"},
        "attachments": [{"filename": "Bericht März 2024 – endgültig.pdf", "content_type": "application/pdf",
                         "content_base64": base64.b64encode(data).decode()}]}]}, tmp_path=tmp_path)
    [mail] = mails(result)
    assert mail["kind"] == "reply" and mail["rcpt_to"] == ["nihon@example.jp"]
    assert mail["mail_from"] == "bot@robots.example"
    _, msg = parse(mail)
    assert str(msg["subject"]) == "Re: Grüße aus Köln"
    assert [(a.display_name, a.addr_spec) for a in msg["to"].addresses] == [("日本", "nihon@example.jp")]
    assert msg["from"].addresses[0].addr_spec == "bot@robots.example"
    assert str(msg["in-reply-to"]) == "<orig-3@example.de>"
    assert str(msg["references"]).split() == ["<orig-1@example.de>", "<orig-2@example.de>", "<orig-3@example.de>"]
    assert str(msg["message-id"]) == effect_message_id(mail)
    assert str(msg["auto-submitted"]) == "auto-replied"
    assert str(msg["x-ticket"]) == "Nr. 42 — offen"
    assert msg["date"].datetime is not None
    assert msg.get_content_type() == "multipart/mixed"
    assert text_of(msg.get_body(("plain",))) == text
    assert text_of(msg.get_body(("html",))) == html
    assert msg.get_body(("plain",)).get_content_charset() == "utf-8"
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Bericht März 2024 – endgültig.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == data


def test_reply_threading_from_in_reply_to(tmp_path):
    original = (b"From: Alice <alice@example.org>\r\nSubject: Re: plans\r\n"
                b"In-Reply-To: <p1@example.org>\r\nMessage-ID: <p2@example.org>\r\n\r\nhi\r\n")
    [mail] = mails(run("actions", {"actions": [{"type": "reply", "text": "ok"}]}, original, tmp_path=tmp_path))
    _, msg = parse(mail)
    assert str(msg["subject"]) == "Re: plans"
    assert mail["rcpt_to"] == ["alice@example.org"]
    assert str(msg["references"]).split() == ["<p1@example.org>", "<p2@example.org>"]


def test_send(tmp_path):
    subject = "Überweisung 📎 " + "ünïcödé " * 30
    result = run("actions", {"actions": [
        {"type": "defer", "reason": "later"},
        {"type": "send", "to": [{"name": "Müller, Jörg", "address": "j@example.de"}, "x@example.org"],
         "cc": [{"name": "Ed \"the\" Boss", "address": "boss@example.org"}], "bcc": ["audit@example.org"],
         "from": {"name": "Rëport Bot", "address": "reports@robots.example"},
         "subject": subject, "text": "plain ascii\r\nsecond line\r\n"}]}, tmp_path=tmp_path)
    [mail] = mails(result)
    assert mail["kind"] == "send"
    assert mail["rcpt_to"] == ["j@example.de", "x@example.org", "boss@example.org", "audit@example.org"]
    raw, msg = parse(mail)
    assert b"audit" not in raw
    assert str(msg["subject"]) == subject.strip() or str(msg["subject"]) == subject
    assert [(a.display_name, a.addr_spec) for a in msg["to"].addresses] == [
        ("Müller, Jörg", "j@example.de"), ("", "x@example.org")]
    assert [(a.display_name, a.addr_spec) for a in msg["cc"].addresses] == [('Ed "the" Boss', "boss@example.org")]
    assert [(a.display_name, a.addr_spec) for a in msg["from"].addresses] == [("Rëport Bot", "reports@robots.example")]
    assert str(msg["auto-submitted"]) == "auto-generated"
    assert msg["in-reply-to"] is None
    assert text_of(msg.get_body(("plain",))) == "plain ascii\nsecond line\n"


def test_forward(tmp_path):
    original = ORIGINAL + b"8-bit: \xe4\xf6\xfc\n"
    [mail] = mails(run("actions", {"actions": [{"type": "forward", "to": ["archive@example.org"]}]},
                       original, tmp_path=tmp_path))
    raw, _ = parse(mail, built=False)
    assert raw == original.replace(b"\n", b"\r\n")
    assert mail["rcpt_to"] == ["archive@example.org"] and mail["mail_from"] == "bot@robots.example"


def test_reply_mode(tmp_path):
    output = "Subject: Antwort für dich\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nHallo Jörg\n"
    [mail] = mails(run("reply", output.encode(), tmp_path=tmp_path))
    raw, msg = parse(mail, built=False)
    assert mail["rcpt_to"] == ["nihon@example.jp"]
    assert [a.addr_spec for a in msg["to"].addresses] == ["nihon@example.jp"]
    assert str(msg["in-reply-to"]) == "<orig-3@example.de>"
    assert str(msg["message-id"]) == effect_message_id(mail)
    assert str(msg["auto-submitted"]) == "auto-replied"
    assert msg.get_content().replace("\r\n", "\n") == "Hallo Jörg\n"


def test_refused(tmp_path):
    result = run("actions", {"actions": [{"type": "reply", "text": "x"}]}, context={"sender": ""}, tmp_path=tmp_path)
    assert result == {"ok": False, "error": "/actions/0: the original has a null sender; no reply (RFC 3834)"}


VALID = [
    {"actions": []},
    {"actions": [{"type": "reply", "text": "t"}]},
    {"actions": [{"type": "reply", "text": "t", "subject": "s", "html": "<p>", "from": "a@b.example",
                  "headers": {"X-A": "b", "Organization": "ü"},
                  "attachments": [{"filename": "f", "content_type": "image/png", "content_base64": "iVBORw=="}]}]},
    {"actions": [{"type": "send", "to": ["a@b"], "cc": [], "subject": "", "text": ""}]},
    {"actions": [{"type": "send", "to": [{"address": "a@b.c"}, {"name": "N", "address": "x.y+z@q-r.s"}],
                  "subject": "s", "text": "t"}]},
    {"actions": [{"type": "forward", "to": ["a@b.c"]}]},
    {"actions": [{"type": "webhook", "url": "https://x.example/p?q=1", "body": [1, {"a": None}]}]},
    {"actions": [{"type": "set_state", "key": "a.b:c-d_e", "value": None, "ttl_seconds": 5}]},
    {"actions": [{"type": "set_state", "key": "k", "value": "v" * 65536, "ttl_seconds": 3.0}]},
    {"actions": [{"type": "defer", "reason": "r"}, {"type": "defer"}]},
    {"actions": [{"type": "reject"}]},
    {"actions": [{"type": "defer"}] * 16},
]

INVALID = [
    [], {}, {"actions": {}}, {"actions": [], "extra": 1}, {"actions": [1]}, {"actions": [{}]},
    {"actions": [{"type": "mail"}]},
    {"actions": [{"type": "defer"}] * 17},
    {"actions": [{"type": "reply"}]},
    {"actions": [{"type": "reply", "text": "t", "unknown": 1}]},
    {"actions": [{"type": "reply", "text": "t", "subject": "a\nb"}]},
    {"actions": [{"type": "reply", "text": "t", "subject": "s" * 901}]},
    {"actions": [{"type": "reply", "text": "t", "from": "a"}]},
    {"actions": [{"type": "reply", "text": "t", "from": "Name <a@b.c>"}]},
    {"actions": [{"type": "reply", "text": "t", "from": {"name": "x"}}]},
    {"actions": [{"type": "reply", "text": "t", "from": {"address": "a@b.c", "name": "a\tb"}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {"From": "x"}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {"content-type": "x"}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {"RESENT-TO": "x"}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {"X_A": "x"}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {"X-A": "x" * 901}}]},
    {"actions": [{"type": "reply", "text": "t", "headers": {f"X-{i}": "v" for i in range(21)}}]},
    {"actions": [{"type": "reply", "text": "t", "attachments": [{"filename": "f", "content_type": "image/png"}]}]},
    {"actions": [{"type": "reply", "text": "t", "attachments": [{"filename": "f", "content_type": "message/rfc822",
                                                                "content_base64": ""}]}]},
    {"actions": [{"type": "reply", "text": "t", "attachments": [{"filename": "f", "content_type": "text/plain",
                                                                "content_base64": "QQ="}]}]},
    {"actions": [{"type": "reply", "text": "t", "attachments": [{"filename": "f", "content_type": "text/plain",
                                                                "content_base64": "QR=="}]}]},
    {"actions": [{"type": "reply", "text": "t", "attachments": [
        {"filename": "f", "content_type": "text/plain", "content_base64": ""}] * 11}]},
    {"actions": [{"type": "send", "to": [], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "send", "to": ["a@b.c"], "text": "t"}]},
    {"actions": [{"type": "send", "to": [f"r{i}@x.y" for i in range(51)], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "send", "to": ["a@b.c"], "bcc": ["a@-b.c"], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "send", "to": ["a@" + "b" * 64], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "send", "to": ["a" * 65 + "@b"], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "send", "to": ["a@" + ("b" * 63 + ".") * 4 + "c"], "subject": "s", "text": "t"}]},
    {"actions": [{"type": "forward", "to": ["a@b.c"], "cc": ["x@y.z"]}]},
    {"actions": [{"type": "webhook", "url": "https://x"}]},
    {"actions": [{"type": "webhook", "url": "https://x y", "body": 1}]},
    {"actions": [{"type": "webhook", "url": "https://", "body": 1}]},
    {"actions": [{"type": "set_state", "key": "", "value": "v"}]},
    {"actions": [{"type": "set_state", "key": "k" * 201, "value": "v"}]},
    {"actions": [{"type": "set_state", "key": "k", "value": "v" * 65537}]},
    {"actions": [{"type": "set_state", "key": "k", "value": "v", "ttl_seconds": 0}]},
    {"actions": [{"type": "set_state", "key": "k", "value": "v", "ttl_seconds": 315360001}]},
    {"actions": [{"type": "set_state", "key": "k", "value": "v", "ttl_seconds": "5"}]},
    {"actions": [{"type": "defer", "reason": "x" * 1001}]},
    {"actions": [{"type": "reject", "reason": "a\nb"}]},
]


@pytest.mark.parametrize("document", VALID + INVALID)
def test_schema_agreement(document, tmp_path):
    schema_ok = jsonschema.Draft202012Validator(SCHEMA).is_valid(document)
    assert schema_ok == (document in VALID)
    result = run("actions", document, tmp_path=tmp_path)
    assert result["ok"] == schema_ok, result.get("error")
    if not schema_ok:
        assert result["error"].startswith("/"), result["error"]
