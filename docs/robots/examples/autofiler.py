#!/usr/bin/python3
"""autofiler.py - files incoming mail into folders and says where it went.

For every mail it is given it

  1. picks a folder:
       - the recipient's address extension, if there is one
         (invoices+finance@example.com -> "finance"; Postfix's EXTENSION),
       - else the first rule of RULES below whose words are in the subject
         (invoice, receipt, ... -> "finance"),
       - else "inbox";
  2. saves the mail as DIR/filed/<folder>/<hash>.eml, the hash being the
     SHA-256 of the mail: a mail that comes again (delivery is at least
     once, by Postfix and by mailrobot alike) lands in the same file;
  3. prints a reply (RFC 5322) for mailrobot's "reply" output mode:
     From: the address the mail came to, To: the sender (Reply-To, else
     From), Subject: "Re: ...", In-Reply-To and References, and
     Auto-Submitted: auto-replied; the text says "Filed under <folder>".
     Mail that must not be answered (RFC 3834: bounces, autoreplies,
     mailing lists, bulk mail) is filed all the same; nothing is printed.

DIR is the first argument, or $HOME without one. Python 3 standard library
only. Exits 75 (try again later) when the mail cannot be saved.

As a mailrobot exec robot (runs as the exec user in
<exec_directory>/autofiler, which is its HOME):

    {"name": "autofiler", "kind": "exec",
     "exec": {"command": "/usr/local/bin/autofiler.py", "output": "reply"}}

As a classic Postfix alias (/etc/aliases, then run newaliases; with
recipient_delimiter = + in main.cf, autofiler+taxes@... files under "taxes"):

    autofiler: "|/usr/local/bin/autofiler.py /var/lib/autofiler"

local(8) does not set HOME for alias deliveries, so name the directory
there; it must be writable by the user the command runs as (default_privs,
or the owner of the aliases file). Under local(8) the reply printed goes
nowhere - sending it is the mailrobot part; the filing works either way.

Note: with "output": "reply", mailrobot sends no reply to mail that must
not be answered (RFC 3834), whatever the robot prints, and counts that as
done. For other mail, empty output is not "no reply": it becomes a reply
with an empty body. A robot that must sometimes stay silent on ordinary
mail is better off with "output": "actions", where {"actions": []} means
nothing to do.
"""

import hashlib
import os
import re
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate, getaddresses

EX_TEMPFAIL = 75

# (folder, words): the first rule with a word in the subject wins.
RULES = [
    ("finance", ("invoice", "invoices", "receipt", "receipts", "payment", "bill", "refund")),
    ("orders", ("order", "shipping", "shipped", "delivery", "tracking")),
    ("support", ("help", "problem", "error", "broken", "support")),
]


def folder_name(text):
    """A safe directory name made of text, or "" if nothing of it is left."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:64]


def choose_folder(extension, subject):
    folder = folder_name(extension or "")
    if folder:
        return folder
    words = set(re.findall(r"[a-z0-9]+", (subject or "").lower()))
    for name, rule_words in RULES:
        if words.intersection(rule_words):
            return name
    return "inbox"


def must_not_answer(mail, sender):
    """RFC 3834 section 2: no automatic replies to these."""
    local = (sender or "").rsplit("@", 1)[0].lower()
    if sender == "" or local == "mailer-daemon" or local.startswith("owner-") \
            or local.endswith("-request"):
        return True
    auto = str(mail.get("Auto-Submitted", "no")).strip().lower()
    if not re.match(r"no\b", auto):
        return True
    if any(mail.get(name) is not None for name in ("List-Id", "List-Post", "List-Unsubscribe")):
        return True
    return str(mail.get("Precedence", "")).strip().lower() in ("bulk", "list", "junk")


def file_mail(directory, folder, raw):
    target = os.path.join(directory, "filed", folder)
    os.makedirs(target, mode=0o700, exist_ok=True)
    name = hashlib.sha256(raw).hexdigest()[:32] + ".eml"
    path = os.path.join(target, name)
    with open(path + ".tmp", "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)
    return path


def build_reply(mail, recipient, folder):
    to = mail.get_all("Reply-To") or mail.get_all("From") or []
    addresses = [addr for _, addr in getaddresses([str(v) for v in to]) if "@" in addr]
    if not addresses:
        return None
    subject = str(mail.get("Subject", "")).strip()
    reply = EmailMessage(policy=policy.default)
    if recipient:
        reply["From"] = recipient
    reply["To"] = ", ".join(addresses)
    reply["Subject"] = subject if re.match(r"re:", subject, re.I) else f"Re: {subject}".rstrip()
    reply["Date"] = formatdate(usegmt=True)
    # No Message-ID: mailrobot makes one from the effect id, the same each
    # time the same mail is processed, so a reply is never sent twice.
    message_id = mail.get("Message-ID")
    if message_id:
        reply["In-Reply-To"] = str(message_id).strip()
        references = " ".join(str(mail.get("References", "")).split())
        reply["References"] = f"{references} {str(message_id).strip()}".strip()
    reply["Auto-Submitted"] = "auto-replied"
    text = f"Filed under {folder}\n\nYour message \"{subject}\" was filed under {folder}.\n"
    # 7-bit clean, as mail should be: quoted-printable when there is UTF-8.
    reply.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    return reply


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HOME", "")
    if not directory:
        print("autofiler.py: no directory: give one as the first argument", file=sys.stderr)
        return EX_TEMPFAIL
    raw = sys.stdin.buffer.read()
    # local(8) and mailrobot both start with a "From sender date" line: not
    # part of the mail, and different at each delivery.
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    try:
        subject = str(mail.get("Subject", ""))
    except Exception:   # a header the email package cannot make sense of
        subject = ""
    folder = choose_folder(os.environ.get("EXTENSION", ""), subject)
    try:
        file_mail(directory, folder, raw)
    except OSError as e:
        print(f"autofiler.py: cannot file the mail: {e}", file=sys.stderr)
        return EX_TEMPFAIL
    print(f"autofiler.py: filed under {folder}", file=sys.stderr)
    try:
        reply = None
        # SENDER is "" for a bounce (null sender); it is unset only when the
        # script is run by hand.
        if not must_not_answer(mail, os.environ.get("SENDER")):
            reply = build_reply(mail, os.environ.get("RECIPIENT", ""), folder)
    except Exception as e:   # header fields the email package cannot make sense of
        print(f"autofiler.py: no reply: {e}", file=sys.stderr)
        reply = None
    if reply is not None:
        sys.stdout.buffer.write(reply.as_bytes(policy=policy.default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
