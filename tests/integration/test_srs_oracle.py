"""SRS (shared/mail/srs.c) against an independent implementation: Debian's
postsrsd (libsrs2's code, the scheme's reference), run on free loopback
ports with the same secret and domain. No Kafka, Redis or Postfix.

postsrsd 1.x speaks Postfix's tcp_table protocol: "get <key>\\n" answered
by "200 <value>" or "500 <reason>", keys and values %-encoded. Its forward
and reverse use the current time, so our side gets time.time() too (and
old days by giving an older `now` to our forward).

Checked: our forward writes exactly postsrsd's address (SRS0 and SRS1),
postsrsd reverses every address we make and we reverse every one it makes,
both refuse the same forged, expired and malformed addresses, and both
leave a sender at the SRS domain alone.
"""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from mailrobot_harness import BUILD, free_port

TOOL = BUILD / "tests" / "srs_tool"
SECRET = "oracle-secret-0123456789"
DOMAIN = "srs.example.net"
DAY = 86400

TAG = re.compile(r"srs([01])[=+-]", re.IGNORECASE)


def tag(sender):
    """The digit of an SRS0/SRS1 local part's tag ("0" or "1"), or None."""
    m = TAG.match(sender)
    return m.group(1) if m else None


SENDERS = [
    "alice@example.org",
    "Bob.Smith+tag@Mail.Example.COM",
    "a=b=c@x.example",
    "o'neil!#$%&*/?^`{|}~-@sub_domain.example-1.org",
    "x@y",
    "srs0x@example.org",
    # Another forwarder's SRS0 and SRS1 addresses (not ours: any hash).
    "SRS0=abcd=TT=example.com=bob@other.example",
    "srs0+abcd=TT=example.com=bob@other.example",
    "SRS1=wxyz=first.example==abcd=TT=example.com=bob@other.example",
]


class Postsrsd:
    def __init__(self, tmp):
        binary = shutil.which("postsrsd") or "/usr/sbin/postsrsd"
        if not os.path.exists(binary):
            pytest.fail("postsrsd is not installed (deploy/local/install-deps installs it)")
        secret = tmp / "postsrsd.secret"
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
        self.forward_port, self.reverse_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [binary, "-d", DOMAIN, "-s", str(secret), "-l", "127.0.0.1", "-4",
             "-f", str(self.forward_port), "-r", str(self.reverse_port), "-t", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.files = {}
        deadline = time.monotonic() + 20
        for port in (self.forward_port, self.reverse_port):
            while True:
                try:
                    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.proc.kill()
                        pytest.fail(f"postsrsd did not start: {self.proc.communicate()[0]!r}")
                    time.sleep(0.05)
            self.files[port] = conn.makefile("rwb")

    def ask(self, port, key):
        f = self.files[port]
        f.write(b"get " + urllib.parse.quote(key, safe="@=+-._").encode() + b"\n")
        f.flush()
        code, _, value = f.readline().decode().rstrip("\n").partition(" ")
        return code, urllib.parse.unquote(value)

    def forward(self, sender):
        return self.ask(self.forward_port, sender)

    def reverse(self, address):
        return self.ask(self.reverse_port, address)

    def stop(self):
        for f in self.files.values():
            f.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Ours:
    def __init__(self):
        assert TOOL.exists(), f"{TOOL} is missing: build first"
        self.proc = subprocess.Popen([str(TOOL), SECRET, DOMAIN], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def _ask(self, request):
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        verdict, _, value = self.proc.stdout.readline().rstrip("\n").partition(" ")
        return verdict, value

    def forward(self, sender, now=None):
        return self._ask(f"forward {int(now if now is not None else time.time())} {sender}")

    def reverse(self, address, now=None, max_age=0):
        return self._ask(f"reverse {int(now if now is not None else time.time())} {max_age} "
                         f"{address}")

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def postsrsd(tmp_path_factory):
    p = Postsrsd(tmp_path_factory.mktemp("postsrsd"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def ours():
    o = Ours()
    yield o
    o.stop()


def same_day(fn):
    """fn() with no day boundary passing while it runs (both sides read the clock)."""
    for _ in range(3):
        day = int(time.time()) // DAY
        result = fn()
        if int(time.time()) // DAY == day:
            return result
    raise AssertionError("the day kept changing")


@pytest.mark.parametrize("sender", SENDERS)
def test_forward_writes_what_postsrsd_writes(postsrsd, ours, sender):
    theirs, mine = same_day(lambda: (postsrsd.forward(sender), ours.forward(sender)))
    assert theirs[0] == "200", theirs
    assert mine == ("ok", theirs[1])
    assert mine[1].endswith("@" + DOMAIN)
    assert mine[1][:5] == ("SRS1=" if tag(sender) else "SRS0=")


@pytest.mark.parametrize("sender", SENDERS)
def test_each_reverses_what_the_other_made(postsrsd, ours, sender):
    expected = "SRS0" + sender[4:] if tag(sender) == "0" else sender
    mine = ours.forward(sender)
    assert mine[0] == "ok", mine
    if tag(sender) == "1":
        # SRS1 forwarded again reverses to the first forwarder's SRS0 address.
        expected = "SRS0" + sender.split("=", 3)[3].split("@")[0] + "@first.example"
    assert postsrsd.reverse(mine[1]) == ("200", expected)

    code, theirs = postsrsd.forward(sender)
    assert code == "200", theirs
    assert ours.reverse(theirs) == ("ok", expected)


def test_sender_at_the_srs_domain_stays(postsrsd, ours):
    for sender in ("postmaster@srs.example.net", "Bob@SRS.Example.NET"):
        assert postsrsd.forward(sender) == ("200", sender)
        assert ours.forward(sender) == ("ok", sender)


def test_the_maximum_age_is_the_same(postsrsd, ours):
    now = int(time.time())
    for days_old, valid in ((0, True), (1, True), (20, True), (21, True), (22, False),
                            (100, False), (-1, False)):
        made = ours.forward("alice@example.org", now=now - days_old * DAY)[1]
        theirs = postsrsd.reverse(made)
        mine = ours.reverse(made, now=now)
        assert (theirs[0] == "200") == valid, (days_old, theirs)
        assert (mine[0] == "ok") == valid, (days_old, mine)
        if valid:
            assert theirs[1] == mine[1] == "alice@example.org"
        else:
            assert theirs[1] == "Time stamp out of date."
            assert mine[1].startswith("SRS0 address: expired")


def test_both_refuse_the_same_addresses(postsrsd, ours):
    made = ours.forward("alice@example.org")[1]
    srs1 = ours.forward("SRS0=abcd=TT=example.com=bob@other.example")[1]

    def other(address):  # the address with another first hash character
        return address[:5] + ("B" if address[5].upper() != "B" else "C") + address[6:]

    cases = {
        # forged or damaged: another hash, user, host or day
        other(made): "Hash invalid in SRS address.",
        made.replace("=alice@", "=alicf@"): "Hash invalid in SRS address.",
        made.replace("=example.org=", "=example.com="): "Hash invalid in SRS address.",
        other(srs1): "Hash invalid in SRS address.",
        made[:8] + made[9:]: "Hash too short in SRS address.",
        # malformed
        "alice@example.org": "Not an SRS address.",
        "SRS2=abcd=AA=h=u@x": "Not an SRS address.",
        "SRS0=abcd=A1=h=u@x": "Bad base32 character in timestamp.",
        "SRS0=abcd=AA=h@x": "No user in SRS0 address.",
        "SRS0=abcd=AA=h=@x": None,  # libsrs2 goes on with an empty user
        "SRS0=abcd@x": "No timestamp in SRS0 address.",
        "SRS0=@x": "No hash in SRS0 address.",
        "SRS1=abcd=host@x": "No user in SRS1 address.",
        "SRS1=abcd=h=@x": None,
    }
    for address, reason in cases.items():
        code, theirs = postsrsd.reverse(address)
        assert code == "500" and reason in (None, theirs), (address, theirs)
        assert ours.reverse(address)[0] == "error", address
    # Case smashed on the way: both still take it back.
    assert postsrsd.reverse(made.upper()) == ("200", "ALICE@EXAMPLE.ORG")
    assert ours.reverse(made.upper()) == ("ok", "ALICE@EXAMPLE.ORG")
    assert postsrsd.reverse(srs1.lower())[0] == "200"
    assert ours.reverse(srs1.lower()) == ("ok", postsrsd.reverse(srs1.lower())[1])
