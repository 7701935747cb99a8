"""tests/mime/test_dkim.py - DKIM signatures (dkim.h) checked by an
independent verifier: dkimpy's dkim.verify(), given the public keys as the
DNS TXT records an operator would publish ("v=DKIM1; k=rsa; p=...").

`dkim_tool SPEC FILE` (from $MR_BUILD_DIR/tests, default
/work/main/build) prints FILE preceded by its DKIM-Signature field. The
keys are made with the openssl command when the module starts. Cases:
RFC 2047 subjects, folded and oddly spaced fields, trailing blank lines
and blanks, MIME multipart, an empty body, bare LF, a PKCS #1 key, a reply
built by outbound_tool; tampering with the body or a signed field must
fail verification; mail whose From domain has no key (a subdomain of one
that has included) is printed unsigned; bad dkim_keys entries are errors.
No services are needed.
"""

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import dkim
import pytest

BUILD = Path(os.environ.get("MR_BUILD_DIR", "/work/main/build")).resolve()
TOOL = BUILD / "tests" / "dkim_tool"
OUTBOUND_TOOL = BUILD / "tests" / "outbound_tool"

SELECTORS = {"example.org": "mr2024", "example.net": "legacy", "robots.example": "bots"}


def openssl(*args):
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """domain -> key file; example.net's key is PKCS #1 ("BEGIN RSA PRIVATE KEY")."""
    d = tmp_path_factory.mktemp("keys")
    files = {}
    for domain in SELECTORS:
        files[domain] = d / f"{domain}.pem"
        if domain == "example.net":
            openssl("genrsa", "-traditional", "-out", str(files[domain]), "1024")
        else:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(files[domain]))
    return files


@pytest.fixture(scope="module")
def spec(keys):
    return " ".join(f"{domain}:{SELECTORS[domain]}:{path}" for domain, path in keys.items())


@pytest.fixture(scope="module")
def dns(keys):
    """The dnsfunc dkimpy calls: the TXT record of <selector>._domainkey.<domain>."""
    records = {}
    for domain, path in keys.items():
        der = openssl("pkey", "-in", str(path), "-pubout", "-outform", "DER")
        name = f"{SELECTORS[domain]}._domainkey.{domain}.".encode()
        records[name] = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return lambda name, timeout=5: records.get(name)


def run_tool(spec, message, tmp_path):
    path = tmp_path / "message.eml"
    path.write_bytes(message)
    return subprocess.run([str(TOOL), spec, str(path)], capture_output=True, timeout=60)


def sign(spec, message, tmp_path):
    done = run_tool(spec, message, tmp_path)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert done.stderr == b""
    return done.stdout


def signature(signed):
    """The DKIM-Signature field in front of a signed message, and its tags."""
    assert signed.startswith(b"DKIM-Signature: ")
    end = re.search(rb"\r\n(?![ \t])", signed).end()
    field = signed[:end]
    assert b"\n" not in field.replace(b"\r\n", b"") and b"\r" not in field.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))
    flat = re.sub(rb"\s+", b"", field[len(b"DKIM-Signature:"):])
    tags = dict(t.split(b"=", 1) for t in flat.split(b";") if t)
    return field, {k.decode(): v.decode() for k, v in tags.items()}


def crlf(text):
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


MESSAGES = {
    "rfc2047_and_folding": crlf(
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>\n"
        b"To: Alice <alice@example.com>,\n"
        b"\tBob <bob@example.com>,\n"
        b"  =?utf-8?b?5pel5pys?= <nihon@example.jp>\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln_=E2=80=93_ein_sehr_lan?=\n"
        b" =?utf-8?q?ger_Betreff_=F0=9F=93=8E?=\n"
        b"Date: Tue, 5 Mar 2024 13:03:22 +0100\n"
        b"Message-ID: <m1@example.org>\n"
        b"References: <a@example.org>\n <b@example.org>\n\t<c@example.org>\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        b"Gr\xc3\xbc\xc3\x9fe!\n"),
    "trailing_blank_lines_and_blanks": crlf(
        b"From: joerg@example.org\n"
        b"SUBJECT:    lots   of\t space   \n"
        b"to:bob@example.com\n"
        b"\n"
        b"line with trailing blanks   \t\n"
        b"  inner    runs\tof  blanks\n"
        b"\n"
        b"\n"
        b"\n"),
    "multipart": crlf(
        b"From: \"Support, Example\" <support@EXAMPLE.ORG>\n"
        b"To: bob@example.com\n"
        b"Subject: report\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\n"
        b"Auto-Submitted: auto-generated\n"
        b"\n"
        b"--b1\n"
        b"Content-Type: text/plain; charset=us-ascii\n"
        b"\n"
        b"see attached\n"
        b"--b1\n"
        b"Content-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        + base64.encodebytes(bytes(range(256)))
        + b"--b1--\n"),
    "empty_body": b"From: joerg@example.org\r\nSubject: nothing\r\n\r\n",
    "pkcs1_key": crlf(b"From: old@example.net\nSubject: legacy key\n\nhello\n"),
}


@pytest.mark.parametrize("name", MESSAGES)
def test_signature_verifies(name, spec, dns, tmp_path):
    message = MESSAGES[name]
    signed = sign(spec, message, tmp_path)
    field, tags = signature(signed)
    assert signed[len(field):] == message
    domain = "example.net" if name == "pkcs1_key" else "example.org"
    assert (tags["d"], tags["s"]) == (domain, SELECTORS[domain])
    assert (tags["a"], tags["c"], tags["v"]) == ("rsa-sha256", "relaxed/relaxed", "1")
    assert tags["h"].split(":")[0].lower() == "from"
    assert dkim.verify(signed, dnsfunc=dns)


def test_signed_fields(spec, dns, tmp_path):
    _, tags = signature(sign(spec, MESSAGES["rfc2047_and_folding"], tmp_path))
    assert tags["h"].lower().split(":") == [
        "from", "to", "subject", "date", "message-id", "references", "mime-version",
        "content-type", "content-transfer-encoding"]


@pytest.mark.parametrize("change", [
    (b"Gr\xc3\xbc\xc3\x9fe!", b"Gr\xc3\xbc\xc3\x9fe?"),                # body
    (b"Message-ID: <m1@", b"Message-ID: <m2@"),                       # a signed field
    (b"<joerg@example.org>", b"<joerg@example.org.evil>"),            # the From address
    (b"Date: Tue, 5 Mar", b"Date: Wed, 6 Mar"),
])
def test_tampering_fails(change, spec, dns, tmp_path):
    signed = sign(spec, MESSAGES["rfc2047_and_folding"], tmp_path)
    assert dkim.verify(signed, dnsfunc=dns)
    assert change[0] in signed
    assert not dkim.verify(signed.replace(change[0], change[1], 1), dnsfunc=dns)


def test_relaxed_survives_refolding_and_unsigned_fields(spec, dns, tmp_path):
    """What relaxed/relaxed allows a relay to do: refold a field, change
    blank runs, add a trailing blank line, put fields in front."""
    signed = sign(spec, MESSAGES["trailing_blank_lines_and_blanks"], tmp_path)
    changed = (b"Received: from relay by mx\r\n" + signed
               .replace(b"lots   of\t space", b"lots of\r\n space")
               .replace(b"inner    runs", b"inner runs") + b"\r\n")
    assert dkim.verify(changed, dnsfunc=dns)
    assert not dkim.verify(changed.replace(b"inner runs", b"innerruns"), dnsfunc=dns)


def test_bare_lf_is_signed_as_crlf(spec, dns, tmp_path):
    message = b"From: joerg@example.org\nSubject: lf\n\nline one\nline two\n"
    signed = sign(spec, message, tmp_path)
    assert signed.endswith(message)
    assert dkim.verify(crlf(signed), dnsfunc=dns)


def test_reply_built_by_outbound_tool(spec, dns, tmp_path):
    context = {"id": "0123456789abcdef0123456789abcdef", "robot": "helper",
               "recipient": "bot@robots.example", "sender": "alice@example.org",
               "hostname": "mx.robots.example", "size_limit": 1024 * 1024}
    original = (b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n"
                b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <o1@example.de>\r\n\r\nHallo\r\n")
    actions = {"actions": [{"type": "reply", "text": "Danke für Ihre Nachricht — " * 20,
                            "html": "<p>Danke für Ihre Nachricht</p>"}]}
    (tmp_path / "ctx.json").write_text(json.dumps(context))
    (tmp_path / "original.eml").write_bytes(original)
    done = subprocess.run([str(OUTBOUND_TOOL), "actions", str(tmp_path / "ctx.json"),
                           str(tmp_path / "original.eml")],
                          input=json.dumps(actions).encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    [action] = json.loads(done.stdout)["actions"]
    mail = base64.b64decode(action["message_base64"])
    signed = sign(spec, mail, tmp_path)
    _, tags = signature(signed)
    assert (tags["d"], tags["s"]) == ("robots.example", "bots")
    assert "auto-submitted" in tags["h"].lower().split(":")
    assert dkim.verify(signed, dnsfunc=dns)


@pytest.mark.parametrize("from_", [
    b"someone@example.com",
    b"someone@lists.example.org",                     # no parent domain's key
    b"\"joerg@example.org\" <mallory@evil.example>",  # the address, not the name
    b"mallory@evil.example (joerg@example.org)",
    b"undisclosed-recipients:;",
])
def test_no_key_no_signature(from_, spec, tmp_path):
    message = b"From: " + from_ + b"\r\nSubject: hi\r\n\r\nbody\r\n"
    assert sign(spec, message, tmp_path) == message


def test_last_from_field_counts(spec, dns, tmp_path):
    signed_by_org = b"From: mallory@evil.example\r\nFrom: joerg@example.org\r\n\r\nx\r\n"
    _, tags = signature(sign(spec, signed_by_org, tmp_path))
    assert tags["d"] == "example.org"
    unsigned = b"From: joerg@example.org\r\nFrom: mallory@evil.example\r\n\r\nx\r\n"
    assert sign(spec, unsigned, tmp_path) == unsigned


def test_bad_entries(keys, tmp_path):
    ed25519 = tmp_path / "ed25519.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(ed25519))
    missing = tmp_path / "missing.pem"
    message = b"From: joerg@example.org\r\n\r\nx\r\n"
    cases = {
        f"example.org:s1:{keys['example.org']} example.com:s1:{missing}":
            f"dkim_keys entry 2 (example.com:s1:{missing}): cannot read {missing}: "
            "No such file or directory",
        f"example.org:{ed25519}":
            f"dkim_keys entry 1 (example.org:{ed25519}): not domain:selector:/path/key.pem",
        f"example.org:s1:{ed25519}":
            f"dkim_keys entry 1 (example.org:s1:{ed25519}): {ed25519}: an Ed25519 key; "
            "libopendkim leaks memory with every Ed25519 signature, so only RSA keys are used",
        f"example.org:s1:{tmp_path / 'message.eml'}":
            f"dkim_keys entry 1 (example.org:s1:{tmp_path / 'message.eml'}): "
            f"{tmp_path / 'message.eml'}: not a PEM private key (or an encrypted one)",
    }
    for spec, error in cases.items():
        done = run_tool(spec, message, tmp_path)
        assert (done.returncode, done.stdout) == (1, b"")
        assert done.stderr.decode() == f"dkim_tool: {error}\n"
