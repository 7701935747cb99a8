"""tests/mime/test_mime_oracle.py - the webhook JSON against Python's email
package, one case per file pair in tests/data/mime/.

For every NAME.eml, `mailrobotctl mime` (from $MR_BUILD_DIR, default
/work/main/build) converts the message; the JSON must

  1. come with exit status 0 and nothing on stderr (so a sanitizer report
     from an ASan/UBSan build fails the case),
  2. validate against schemas/webhook-v1.json,
  3. agree with what Python's email package (BytesParser, policy.default)
     reads from the same bytes: subject, from/to/cc/reply_to, message_id,
     in_reply_to, references, date, text, html, attachments (names, types,
     Content-IDs, decoded bytes) and the header names in order,
  4. hold the values NAME.json expects ("expect"), for what the oracle
     cannot check (stripped_text, spam, our documented rules).

Where the two legitimately disagree, NAME.json names the field under
"oracle_skip" with the reason, and must then pin our value under "expect".

test_hostile_shape runs messages too large to keep in the tree (made here,
up to max_message_bytes): shapes that would make gmime's parser take
gigabytes or seconds. Each must convert with exit status 0, valid JSON and
a bounded peak memory (no time is asserted; a hang fails by timeout).
"""

import base64
import json
import os
import re
import subprocess
import tempfile
import threading
from datetime import timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "mime"
SCHEMA = json.loads((ROOT / "schemas" / "webhook-v1.json").read_text())
BUILD = Path(os.environ.get("MR_BUILD_DIR", "/work/main/build")).resolve()
CTL = BUILD / "bin" / "mailrobotctl"
CASES = sorted(p.stem for p in DATA.glob("*.eml"))
ADDRESS_FIELDS = ("from", "to", "cc", "reply_to")


class PythonCannotSay(Exception):
    """Python's email package raised where we give an answer."""


# --- our side --------------------------------------------------------------------


def convert(path, with_peak_memory=False):
    """The JSON for a message file, and (with_peak_memory) the peak RSS of
    the conversion in KiB."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        # A clean environment: any MAILROBOT_* variable would be read as
        # configuration (and an unknown one is an error).
        child = subprocess.Popen([str(CTL), "-C", "/dev/null", "mime", "--compact", str(path)],
                                 env={"PATH": "/usr/bin:/bin"}, stdout=stdout, stderr=stderr)
        watchdog = threading.Timer(120, child.kill)  # a hang fails, slowly
        watchdog.start()
        _, status, usage = os.wait4(child.pid, 0)  # wait4: the child's own peak memory
        watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read().decode(errors="replace")
    code = child.returncode
    assert code == 0, f"mailrobotctl exited {code}:\n{err}"
    assert err == "", f"mailrobotctl wrote to stderr:\n{err}"
    return (json.loads(out), usage.ru_maxrss) if with_peak_memory else json.loads(out)


# --- Python's side --------------------------------------------------------------


def repair_8bit(text):
    """Python keeps 8-bit header bytes as surrogate escapes (it does not
    decide their charset); we read them as UTF-8, else windows-1252. Apply
    that rule to Python's undecided bytes, and only to them."""
    if text is None or not re.search("[\udc80-\udcff]", text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def body_normalised(text):
    """The two normalisations text and html need, on both sides:
    - CRLF -> LF: we turn CRLF into LF (line ends belong to the transport);
      Python keeps what the message had;
    - one final newline less: which parser owns the line end of a part's
      last line is not the same everywhere (RFC 2046 gives the CRLF before
      a boundary to the boundary; at the end of an unterminated multipart
      Python drops it, gmime keeps it)."""
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    return text[:-1] if text.endswith("\n") else text


def msg_ids(value):
    if value is None:
        return []
    ids = [i.strip() for i in re.findall(r"<([^<>]*)>", str(value))]
    return ids or ([str(value).strip()] if str(value).strip() else [])


def addresses(msg, name):
    header = msg[name]
    if header is None:
        return []
    return [{"name": repair_8bit(a.display_name) or None, "address": repair_8bit(a.addr_spec)}
            for a in header.addresses]


def date_utc(msg):
    header = msg["date"]
    when = getattr(header, "datetime", None) if header is not None else None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 3.3)
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def body_text(msg, subtype):
    part = msg.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return body_normalised(part.get_content())
    except LookupError as e:
        raise PythonCannotSay(f"get_content(): {e!r}") from e


def attachment_parts(msg):
    """Every attachment in tree order: iter_attachments() of every
    multipart (it answers for direct children only), descending into
    multiparts; a top-level part that is not a body is one attachment."""
    if msg.get_content_maintype() != "multipart":
        return [] if msg.get_body(preferencelist=("plain", "html")) is msg else [msg]
    found = []

    def visit(node):
        attachments = [id(p) for p in node.iter_attachments()]
        for part in node.iter_parts():
            if part.get_content_maintype() == "multipart":
                visit(part)
            elif id(part) in attachments:
                found.append(part)
    visit(msg)
    return found


def message_summary(raw):
    """What a forwarded message's bytes parse to. Both sides write the
    embedded message back out (Python's as_bytes() refolds, gmime keeps it
    nearly verbatim), so bytes are not comparable; what they parse to is."""
    inner = BytesParser(policy=policy.default).parsebytes(raw)
    return {"headers": [(k, repair_8bit(str(v))) for k, v in inner.items()],
            "text": body_text(inner, "plain")}


def python_attachment(part):
    ctype = part.get_content_type()
    cid = part.get("content-id")
    view = {"filename": repair_8bit(part.get_filename()), "content_type": ctype,
            "content_id": msg_ids(cid)[0] if cid and msg_ids(cid) else None}
    if ctype == "message/rfc822":
        view["message"] = message_summary(part.get_payload(0).as_bytes())
    else:
        data = part.get_payload(decode=True) or b""
        view.update(size=len(data), bytes=data)
    return view


def our_attachment(a):
    data = base64.b64decode(a["content_base64"])
    view = {k: a[k] for k in ("filename", "content_type", "content_id")}
    if a["content_type"] == "message/rfc822":
        view["message"] = message_summary(data)
    else:
        assert a["size"] == len(data), "size is not the length of the decoded bytes"
        view.update(size=a["size"], bytes=data)
    return view


def python_view(raw):
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    view = {
        "subject": repair_8bit(None if msg["subject"] is None else str(msg["subject"])),
        "message_id": (msg_ids(msg["message-id"]) or [None])[0],
        "in_reply_to": (msg_ids(msg["in-reply-to"]) or [None])[0],
        "references": msg_ids(msg["references"]),
        "date": date_utc(msg),
        "header_names": list(msg.keys()),
    }
    view.update({f: addresses(msg, f.replace("_", "-")) for f in ADDRESS_FIELDS})
    for field, compute in (("text", lambda: body_text(msg, "plain")),
                           ("html", lambda: body_text(msg, "html")),
                           ("attachments", lambda: [python_attachment(p) for p in attachment_parts(msg)])):
        try:
            view[field] = compute()
        except RecursionError as e:  # get_body() and our walk recurse per nesting level
            view[field] = PythonCannotSay(f"RecursionError: {e}")
        except PythonCannotSay as e:
            view[field] = e
    return view


def our_view(out):
    view = {f: out[f] for f in ("subject", "message_id", "in_reply_to", "references", "date")
            + ADDRESS_FIELDS}
    view.update(text=body_normalised(out["text"]), html=body_normalised(out["html"]))
    view["header_names"] = [h["name"] for h in out["headers"]]
    view["attachments"] = [our_attachment(a) for a in out["attachments"]]
    return view


# --- expectations ------------------------------------------------------------------


def matches(expected, actual):
    """expected == actual, except that objects compare on the keys expected
    names (lists of them element by element, same length)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k])
                                                for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(matches(e, a) for e, a in zip(expected, actual)))
    return expected == actual


def load_meta(name):
    meta = json.loads((DATA / f"{name}.json").read_text())
    unknown = set(meta) - {"description", "expect", "oracle_skip"}
    assert not unknown, f"{name}.json: unknown keys {unknown}"
    # header_names (the oracle's view of headers) is pinned by expecting headers
    pinned = set(meta.get("expect", {})) | ({"header_names"} if "headers" in meta.get("expect", {}) else set())
    missing = set(meta.get("oracle_skip", {})) - pinned
    assert not missing, f"{name}.json: oracle_skip without expect for {missing}"
    return meta


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_case(name):
    meta = load_meta(name)
    raw = (DATA / f"{name}.eml").read_bytes()
    out = convert(DATA / f"{name}.eml")
    jsonschema.Draft202012Validator(SCHEMA).validate(out)
    assert out["size"] == len(raw)

    ours, theirs = our_view(out), python_view(raw)
    skip = meta.get("oracle_skip", {})
    differences = []
    for field, value in theirs.items():
        if field in skip:
            continue
        if isinstance(value, PythonCannotSay):
            differences.append(f"{field}: Python cannot say ({value}); needs oracle_skip + expect")
        elif ours[field] != value:
            differences.append(f"{field}:\n  ours:   {ours[field]!r}\n  python: {value!r}")
    assert not differences, f"{name}: differs from Python's email package:\n" + "\n".join(differences)

    for field, value in meta.get("expect", {}).items():
        assert matches(value, out[field]), f"{name}: {field} is {out[field]!r}, expected {value!r}"


# --- hostile shapes ----------------------------------------------------------------

MAX_MESSAGE_BYTES = 25 * 1024 * 1024  # the default max_message_bytes
# Peak memory allowed for one conversion: a few times the input, far below
# what gmime would take unguarded (1.3 GB for 5 MB of empty parts, 1 GB for
# 4 MB of addresses). ru_maxrss also counts the pages the child had from
# this process when it was forked, so it overestimates a little.
# Sanitizer builds keep freed memory in quarantine (256 MB) and shadow it.
PEAK_KIB = 400 * 1024 if "asan" not in BUILD.name else 1200 * 1024
HEAD = "From: a@example.org\nSubject: hostile\nMIME-Version: 1.0\n"


def nested_multiparts(levels):
    return (HEAD + "".join(f"Content-Type: multipart/mixed; boundary=d{i}\n\n--d{i}\n"
                           for i in range(levels))
            + "Content-Type: text/plain\n\ndeep\n" + "".join(f"--d{i}--\n" for i in reversed(range(levels))))


def repeated(prefix, unit, suffix=""):
    count = (MAX_MESSAGE_BYTES - len(prefix) - len(suffix)) // len(unit)
    return prefix + unit * count + suffix


HOSTILE = {
    # gmime compares every "--" line with every enclosing boundary: 15 s unguarded
    "nested-multiparts": lambda: nested_multiparts(360000),
    # an object per part: gigabytes unguarded
    "empty-parts": lambda: repeated(HEAD + "Content-Type: multipart/mixed; boundary=b\n\n", "--b\n\n", "--b--\n"),
    # an object per header field: gigabytes unguarded
    "tiny-fields": lambda: repeated(HEAD, "a:b\n", "\nbody\n"),
    # runs of encoded words: merged in one pass
    "encoded-word-run": lambda: repeated("Subject: ", "=?utf-8?B?YWI=?= ", "\n\nbody\n"),
    # message/rfc822 inside message/rfc822
    "nested-messages": lambda: repeated(HEAD, "Content-Type: message/rfc822\n\nSubject: x\n", "\nend\n"),
    # a group per colon, recursively: gmime overflowed its stack
    "nested-groups": lambda: repeated("From: a@example.org\nTo: ", "a:", "\n\nbody\n"),
    # gmime looks for the end of each from its start to the end of the field: quadratic
    "unterminated-encoded-words": lambda: repeated("Subject: ", "=?x?B?a ", "\n\nbody\n"),
    # about a kilobyte of gmime memory per mailbox, per parameter
    "many-addresses": lambda: repeated("From: a@example.org\nTo: ", "b@c,", "\n\nbody\n"),
    "many-parameters": lambda: repeated(HEAD + "Content-Type: text/plain; ", "a=b; ", "\n\nbody\n"),
    "many-fields-of-parameters": lambda: repeated(HEAD, "X-P: " + "a=b; " * 1000 + "\n", "\nbody\n"),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_hostile_shape(shape, tmp_path):
    path = tmp_path / f"{shape}.eml"
    path.write_text(HOSTILE[shape]())
    assert path.stat().st_size <= MAX_MESSAGE_BYTES
    out, peak_kib = convert(path, with_peak_memory=True)
    jsonschema.Draft202012Validator(SCHEMA).validate(out)
    assert out["size"] == path.stat().st_size
    assert peak_kib < PEAK_KIB, f"{shape}: peak memory {peak_kib} KiB"
    if shape == "tiny-fields":
        assert len(out["headers"]) == 10000  # MR_MIME_FIELDS_LIMIT
