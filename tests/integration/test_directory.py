"""The hosted-mail directory (docs/accounts.md, docs/directory-layout.md)
through mailrobotctl against real Redis, and real Kafka for the reset mail:
domains, accounts, passwords, resets (the token read from the mail on
<prefix>.outbound), aliases and loops, removal that leaves no key behind,
backup and restore that reproduce Redis exactly, invalid backups that
write nothing, concurrent writers, and passwords that never show."""

import email
import email.policy
import json
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import jsonschema
import pytest
import redis

from mailrobot_harness import CTL, REPO, clean_env, read_records, unique

SCHEMA = json.loads((REPO / "schemas" / "backup-v1.json").read_text())
PASSWORDS = []     # every password a test used: none may show anywhere
OUTPUTS = []       # every stdout and stderr of mailrobotctl


def pw(label="pw"):
    p = f"{label}-{unique('S')}-Zq9"
    PASSWORDS.append(p)
    return p


@pytest.fixture(scope="module")
def stack_with_redis(kafka):
    kafka.start("redis")
    kafka.redis_port = int(kafka.env["MR_REDIS_PORT"])
    kafka.log = kafka.dir / "directory.log"
    return kafka


def make_site(s, tmp_path, db=0, **keys):
    prefix = unique("d").lower()
    url = f"redis://127.0.0.1:{s.redis_port}/{db}"
    config = s.write_config(tmp_path / f"{prefix}.conf", redis_url=url, redis_prefix=prefix,
                            log_level="debug", log_file=str(s.log), **keys)
    r = redis.Redis.from_url(url, decode_responses=True)
    return SimpleNamespace(config=config, prefix=prefix, r=r, brokers=s.brokers)


@pytest.fixture
def site(stack_with_redis, tmp_path):
    return make_site(stack_with_redis, tmp_path)


def ctl(site, *args, input=None, ok=True):
    res = subprocess.run([str(CTL), "-C", str(site.config), *args], capture_output=True,
                         input=input.encode() if isinstance(input, str) else input,
                         env=clean_env(), timeout=60)
    OUTPUTS.append(res.stdout.decode() + res.stderr.decode())
    if ok is True:
        assert res.returncode == 0, res.stderr.decode()
    elif ok is False:
        assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    return SimpleNamespace(rc=res.returncode, out=res.stdout.decode(), err=res.stderr.decode())


def keys(site):
    """Every key of the site but the version counters, with its value."""
    out = {}
    for k in site.r.scan_iter(f"{site.prefix}:*"):
        if k.endswith(":version"):
            continue
        t = site.r.type(k)
        out[k] = (t, site.r.get(k) if t == "string" else site.r.hgetall(k) if t == "hash"
                  else sorted(site.r.smembers(k)) if t == "set" else None)
    return out


def account(site, address, recovery=None):
    password = pw()
    args = ["account", "create", address] + (["--recovery", recovery] if recovery else [])
    ctl(site, *args, input=password + "\n")
    return password


def robot(site, name):
    doc = {"name": name, "kind": "drop"}
    ctl(site, "robot", "apply", "-", input=json.dumps(doc))


# --- domains, accounts, passwords ---------------------------------------------------------


def test_domains(site):
    assert "added domain" in ctl(site, "domain", "add", "Example.COM").out
    res = ctl(site, "domain", "add", "example.com", ok=False)
    assert "conflict: domain example.com: already hosted" in res.err
    assert "invalid: domain:" in ctl(site, "domain", "add", "bad..domain", ok=False).err
    ctl(site, "domain", "add", "b.example")
    assert ctl(site, "domain", "list").out == "b.example\nexample.com\n"
    account(site, "bob@example.com")
    res = ctl(site, "domain", "remove", "example.com", ok=False)
    assert "conflict" in res.err and "1 account(s)" in res.err
    ctl(site, "domain", "catch-all", "example.com", "bob@example.com")
    assert ctl(site, "domain", "catch-all", "example.com").out == "bob@example.com\n"
    assert "not_found" in ctl(site, "domain", "catch-all", "nope.example", "x@y.org",
                              ok=False).err
    ctl(site, "domain", "catch-all", "example.com", "--none")
    assert ctl(site, "domain", "catch-all", "example.com").out == "(none)\n"
    ctl(site, "domain", "remove", "b.example")
    ctl(site, "account", "remove", "bob@example.com")
    ctl(site, "domain", "remove", "example.com")
    assert keys(site) == {}


def test_accounts_and_passwords(site):
    ctl(site, "domain", "add", "example.com")
    short = "short9"
    res = ctl(site, "account", "create", "al@example.com", input=short + "\n", ok=False)
    assert "invalid: password: shorter than 10 characters" in res.err
    assert short not in res.err
    long = "x" * 1025
    res = ctl(site, "account", "create", "al@example.com", input=long + "\n", ok=False)
    assert "longer than 1024 bytes" in res.err
    # passwords are never taken from the command line
    assert ctl(site, "account", "create", "al@example.com", "--password", "x" * 12,
               ok=None).rc == 2
    assert "not hosted" in ctl(site, "account", "create", "al@other.example",
                               input=pw() + "\n", ok=False).err
    password = account(site, "Al@Example.com", recovery="al@home.example")
    assert "conflict" in ctl(site, "account", "create", "al@example.com", input=pw() + "\n",
                             ok=False).err
    assert "recovery: must be another" in ctl(site, "account", "create", "me@example.com",
                                              "--recovery", "me@example.com",
                                              input=pw() + "\n", ok=False).err
    stored = site.r.hgetall(f"{site.prefix}:account:al@example.com")
    assert stored["password"].startswith("$argon2id$v=19$")
    assert stored["recovery"] == "al@home.example"
    ctl(site, "account", "check", "al@example.com", input=password + "\n")
    assert "denied: wrong address or password" in ctl(
        site, "account", "check", "al@example.com", input="not-the-password\n", ok=False).err
    assert "denied: wrong address or password" in ctl(
        site, "account", "check", "nobody@example.com", input=password + "\n", ok=False).err
    # passwd needs the old password
    new = pw("new")
    assert "denied" in ctl(site, "account", "passwd", "al@example.com",
                           input=f"wrong-old-password\n{new}\n", ok=False).err
    ctl(site, "account", "passwd", "al@example.com", input=f"{password}\n{new}\n")
    ctl(site, "account", "check", "al@example.com", input=new + "\n")
    # ... unless an admin changes it; from a file
    admin_pw = pw("adm")
    f = site.config.parent / "pwfile"
    f.write_text(admin_pw + "\n")
    ctl(site, "account", "passwd", "al@example.com", "--admin", "--password-file", str(f))
    ctl(site, "account", "check", "al@example.com", "--password-file", str(f))
    out = ctl(site, "account", "show", "al@example.com").out
    assert "recovery  al@home.example" in out and "$argon2id" not in out
    ctl(site, "account", "recovery", "al@example.com", "--none")
    assert "recovery  (none)" in ctl(site, "account", "show", "al@example.com").out
    assert ctl(site, "account", "list").out == "al@example.com\n"
    assert ctl(site, "account", "list", "other.example").out == ""
    assert "not_found" in ctl(site, "account", "show", "x@example.com", ok=False).err


# --- aliases ------------------------------------------------------------------------------


def test_aliases_and_loops(site):
    ctl(site, "domain", "add", "example.com")
    account(site, "bob@example.com")
    robot(site, "tickets")
    ctl(site, "alias", "set", "team@example.com", "bob@example.com", "Ext@Other.org",
        "robot:tickets")
    assert ctl(site, "alias", "show", "team@example.com").out.split() == [
        "bob@example.com", "ext@other.org", "robot:tickets"]
    ctl(site, "alias", "set", "all@example.com", "team@example.com")
    res = ctl(site, "alias", "set", "team@example.com", "all@example.com", ok=False)
    assert "conflict: targets: a loop" in res.err
    assert "conflict" in ctl(site, "alias", "set", "x@example.com", "x@example.com",
                             ok=False).err
    res = ctl(site, "alias", "set", "y@example.com", "bob@example.com", "ghost@example.com",
              ok=False)
    assert "targets/1: ghost@example.com is in a hosted domain but is no account" in res.err
    assert "targets/0: no robot nope" in ctl(site, "alias", "set", "y@example.com",
                                             "robot:nope", ok=False).err
    assert "conflict: address: bob@example.com is an account" in ctl(
        site, "alias", "set", "bob@example.com", "x@other.org", ok=False).err
    assert "already an alias" in ctl(site, "account", "create", "team@example.com",
                                     input=pw() + "\n", ok=False).err
    too_many = [f"t{i}@other.org" for i in range(51)]
    assert "targets: too many (1 to 50)" in ctl(site, "alias", "set", "z@example.com",
                                                *too_many, ok=False).err
    ctl(site, "alias", "set", "z@example.com", *too_many[:50])
    assert ctl(site, "alias", "list", "example.com").out.split() == [
        "all@example.com", "team@example.com", "z@example.com"]
    # removing team leaves all@ without targets: it goes too
    ctl(site, "alias", "remove", "team@example.com")
    assert ctl(site, "alias", "list").out.split() == ["z@example.com"]
    assert "not_found" in ctl(site, "alias", "remove", "team@example.com", ok=False).err


# --- removal leaves nothing behind --------------------------------------------------------


def test_account_removal_leaves_no_key(site):
    ctl(site, "domain", "add", "example.com")
    account(site, "keep@example.com")
    ctl(site, "alias", "set", "shared@example.com", "keep@example.com")
    before = keys(site)

    account(site, "carol@example.com", recovery="carol@home.example")
    robot(site, "carols-bot")
    ctl(site, "route", "add", "bot@example.com", "carols-bot")
    site.r.set(f"{site.prefix}:state:carols-bot:counter", "7")
    site.r.set(f"{site.prefix}:autoreply:carols-bot:x@y.org", "1")
    ctl(site, "alias", "set", "carol.smith@example.com", "carol@example.com")
    ctl(site, "alias", "set", "only-carol@example.com", "carol@example.com")
    ctl(site, "alias", "set", "shared@example.com", "keep@example.com", "carol@example.com",
        "robot:carols-bot")
    ctl(site, "domain", "catch-all", "example.com", "carol@example.com")
    for item in ("robot:carols-bot", "route:bot@example.com", "alias:carol.smith@example.com"):
        ctl(site, "account", "own", "carol@example.com", item)
    ctl(site, "account", "reset-start", "carol@example.com", ok=None)  # Kafka topic may differ
    assert "not_found" in ctl(site, "account", "own", "carol@example.com", "robot:none",
                              ok=False).err

    ctl(site, "account", "remove", "carol@example.com")
    after = keys(site)
    after.pop(f"{site.prefix}:domain:example.com")
    before.pop(f"{site.prefix}:domain:example.com")
    assert after == before
    assert not [k for k in site.r.scan_iter(f"{site.prefix}:*") if "carol" in k]
    assert site.r.hget(f"{site.prefix}:domain:example.com", "catch_all") is None
    assert "not_found" in ctl(site, "account", "remove", "carol@example.com", ok=False).err


# --- password reset -----------------------------------------------------------------------


def reset_tokens(site, recovery, count=1):
    """The tokens of the reset mails to recovery, read from the outbound
    topic with confluent-kafka and parsed with Python's email (in partition
    order: the mails' keys differ)."""
    recs = read_records(site.brokers, "mailrobot.outbound", expect=count,
                        where=lambda r: r.headers.get("mr.rcpt_to") == recovery.encode())
    assert len(recs) == count
    return [token_of(rec, recovery) for rec in recs]


def token_of(rec, recovery):
    assert rec.h("mr.v") == "1" and rec.h("mr.kind") == "send"
    assert rec.h("mr.robot") == "directory" and rec.key.decode() == rec.h("mr.effect_id")
    assert re.fullmatch(r"[0-9a-f]{32}", rec.h("mr.id"))
    msg = email.message_from_bytes(rec.value, policy=email.policy.default)
    assert msg["To"] == recovery and msg["Subject"] == "Password reset"
    assert rec.h("mr.mail_from") == msg["From"].addresses[0].addr_spec
    body = msg.get_body(("plain",)).get_content()
    return re.search(r"^    ([A-Za-z0-9_-]{43})\r?$", body, re.M).group(1)


def test_reset_by_mail(site):
    ctl(site, "domain", "add", "example.com")
    recovery = f"{unique('r').lower()}@home.example"
    account(site, "dan@example.com", recovery=recovery)
    assert "not_found" in ctl(site, "account", "reset-start", "nobody@example.com",
                              ok=False).err
    res = ctl(site, "account", "reset-start", "dan@example.com")
    assert f"queued to {recovery}" in res.out and "token" not in res.out
    [token] = reset_tokens(site, recovery)
    stored = site.r.hget(f"{site.prefix}:account:dan@example.com", "reset")
    assert stored != token and len(stored) == 64
    assert site.r.get(f"{site.prefix}:reset:{stored}") == "dan@example.com"
    assert not [k for k in site.r.scan_iter(f"{site.prefix}:*") if token in k]
    assert "reset     pending" in ctl(site, "account", "show", "dan@example.com").out

    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    new = pw("reset")
    assert "denied: token: wrong, used or expired" in ctl(
        site, "account", "reset-finish", "--token", wrong, input=new + "\n", ok=False).err
    assert "denied" in ctl(site, "account", "reset-finish", "--token", "short",
                           input=new + "\n", ok=False).err
    assert "invalid: password" in ctl(site, "account", "reset-finish", "--token", token,
                                      input="tiny\n", ok=False).err
    ctl(site, "account", "reset-finish", "--token", token, input=new + "\n")
    ctl(site, "account", "check", "dan@example.com", input=new + "\n")
    assert "denied" in ctl(site, "account", "reset-finish", "--token", token,
                           input=pw() + "\n", ok=False).err
    assert site.r.hget(f"{site.prefix}:account:dan@example.com", "reset") is None
    assert not list(site.r.scan_iter(f"{site.prefix}:reset:*"))

    # a newer token replaces the older one
    first = ctl(site, "account", "reset-start", "dan@example.com", "--print-token").out
    second = ctl(site, "account", "reset-start", "dan@example.com", "--print-token").out
    t1, t2 = (re.search(r"^token (\S+)$", o, re.M).group(1) for o in (first, second))
    assert t2 in reset_tokens(site, recovery, count=3)
    assert "denied" in ctl(site, "account", "reset-finish", "--token", t1, input=pw() + "\n",
                           ok=False).err
    # no recovery address: nothing to send to
    account(site, "norec@example.com")
    assert "conflict: account norec@example.com: has no recovery" in ctl(
        site, "account", "reset-start", "norec@example.com", ok=False).err


def test_expired_token_refused(stack_with_redis, tmp_path):
    site = make_site(stack_with_redis, tmp_path, directory_reset_ttl="1s")
    ctl(site, "domain", "add", "example.com")
    account(site, "eve@example.com", recovery=f"{unique('e').lower()}@home.example")
    out = ctl(site, "account", "reset-start", "eve@example.com", "--print-token").out
    token = re.search(r"^token (\S+)$", out, re.M).group(1)
    time.sleep(1.3)
    assert "denied: token: wrong, used or expired" in ctl(
        site, "account", "reset-finish", "--token", token, input=pw() + "\n", ok=False).err


# --- backup and restore -------------------------------------------------------------------


def build_directory(site):
    ctl(site, "domain", "add", "example.com")
    ctl(site, "domain", "add", "two.example")
    account(site, "ann@example.com", recovery="ann@home.example")
    account(site, "ben@two.example")
    robot(site, "helpdesk")
    ctl(site, "route", "add", "help@example.com", "helpdesk")
    ctl(site, "route", "add", "@two.example", "helpdesk")
    ctl(site, "alias", "set", "info@example.com", "ann@example.com", "ben@two.example",
        "robot:helpdesk", "far@away.example")
    ctl(site, "alias", "set", "ann.old@example.com", "ann@example.com")
    ctl(site, "domain", "catch-all", "example.com", "info@example.com")
    for item in ("robot:helpdesk", "route:help@example.com", "alias:ann.old@example.com"):
        ctl(site, "account", "own", "ann@example.com", item)


def test_backup_flush_restore_exact(stack_with_redis, tmp_path):
    site = make_site(stack_with_redis, tmp_path, db=1)
    site.r.flushdb()
    build_directory(site)
    original = keys(site)
    backup = ctl(site, "backup").out
    doc = json.loads(backup)
    jsonschema.validate(doc, SCHEMA)
    assert {a["address"] for a in doc["accounts"]} == {"ann@example.com", "ben@two.example"}
    assert all(a["password"].startswith("$argon2id$") for a in doc["accounts"])

    site.r.flushdb()
    ctl(site, "restore", "-", input=backup)
    assert keys(site) == original
    ctl(site, "restore", "-", input=backup)
    assert keys(site) == original
    path = tmp_path / "backup.json"
    path.write_text(backup)
    ctl(site, "restore", str(path))
    assert keys(site) == original

    # one account, into an empty directory
    one = ctl(site, "backup", "--account", "ann@example.com").out
    one_doc = json.loads(one)
    jsonschema.validate(one_doc, SCHEMA)
    assert one_doc["account"] == "ann@example.com"
    assert [a["name"] for a in one_doc["robots"]] == ["helpdesk"]
    assert [a["address"] for a in one_doc["aliases"]] == ["ann.old@example.com"]
    site.r.flushdb()
    ctl(site, "restore", "-", input=one)
    got = keys(site)
    p = site.prefix
    for k in (f"{p}:account:ann@example.com", f"{p}:owned:ann@example.com",
              f"{p}:alias:ann.old@example.com", f"{p}:robot:helpdesk",
              f"{p}:route:help@example.com"):
        assert got[k] == original[k], k
    ctl(site, "account", "check", "ann@example.com", input=PASSWORDS[-2] + "\n")
    site.r.flushdb()


def test_invalid_backups_write_nothing(stack_with_redis, tmp_path):
    site = make_site(stack_with_redis, tmp_path, db=2)
    site.r.flushdb()
    build_directory(site)
    good = json.loads(ctl(site, "backup").out)
    site.r.flushdb()

    def broken(change):
        doc = json.loads(json.dumps(good))
        change(doc)
        return json.dumps(doc)

    cases = {
        "/accounts/0/password: not an argon2id hash":
            broken(lambda d: d["accounts"][0].update(password="clear-text-password")),
        "/accounts/1/nickname: unknown member":
            broken(lambda d: d["accounts"][1].update(nickname="x")),
        "/aliases/1/address: not a lower-case address":
            broken(lambda d: d["aliases"][1].update(address="Info@example.com")),
        "/aliases/0/targets: expected an array of 1 to 50 targets":
            broken(lambda d: d["aliases"][0].update(targets=[f"t{i}@x.org" for i in range(51)])),
        "/version: expected 1":
            broken(lambda d: d.update(version=2)),
        "/robots/0/document: not a valid robot":
            broken(lambda d: d["robots"][0].update(document="{\"name\": \"helpdesk\"}")),
        "/aliases/0/address: this address is already in the backup":
            broken(lambda d: d["aliases"][0].update(address="ann@example.com")),
        "domain nowhere.example is neither hosted nor in the backup":
            broken(lambda d: d["accounts"][1].update(address="ben@nowhere.example")),
        "not JSON":
            json.dumps(good)[:-10],
    }
    for message, text in cases.items():
        res = ctl(site, "restore", "-", input=text, ok=False)
        assert message in res.err, (message, res.err)
        assert "invalid" in res.err
        assert site.r.dbsize() == 0, message
    # the schema agrees on the structural ones
    for message in list(cases)[:5]:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(json.loads(cases[message]), SCHEMA)
    big = make_site(stack_with_redis, tmp_path, db=2, directory_backup_limit="1KiB")
    res = ctl(big, "restore", "-", input=json.dumps(good), ok=False)
    assert "larger than directory_backup_limit" in res.err
    assert site.r.dbsize() == 0


# --- concurrency --------------------------------------------------------------------------


def test_concurrent_alias_writers(site):
    ctl(site, "domain", "add", "example.com")
    account(site, "bob@example.com")
    n = 20
    for i in range(n):
        ctl(site, "alias", "set", f"a{i}@example.com", "bob@example.com")

    # a ring a0 -> a1 -> ... -> a19 -> a0, written by 20 processes at once:
    # the last link must be refused however the writes interleave
    def link(i):
        return ctl(site, "alias", "set", f"a{i}@example.com", f"a{(i + 1) % n}@example.com",
                   ok=None)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(link, range(n)))
    refused = [r for r in results if r.rc != 0]
    assert refused and all("conflict" in r.err for r in refused), [r.err for r in refused]
    graph = {a: site.r.smembers(f"{site.prefix}:alias:{a}")
             for a in site.r.smembers(f"{site.prefix}:aliases")}
    for start in graph:                         # no loop anywhere
        seen, todo = set(), list(graph[start])
        while todo:
            t = todo.pop()
            assert t != start, f"loop through {start}"
            if t in graph and t not in seen:
                seen.add(t)
                todo.extend(graph[t])

    # 20 writers of different aliases: no update lost
    def put(i):
        return ctl(site, "alias", "set", f"new{i}@example.com", "bob@example.com", ok=None)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(put, range(n)))
    assert all(r.rc == 0 for r in results), [r.err for r in results if r.rc]
    aliases = site.r.smembers(f"{site.prefix}:aliases")
    assert {f"new{i}@example.com" for i in range(n)} <= aliases


# --- passwords never show -----------------------------------------------------------------


def test_zz_passwords_never_show(stack_with_redis):
    """Runs last: every password used above, in every output, the log file
    and every value in Redis."""
    assert PASSWORDS
    log = stack_with_redis.log.read_text() if stack_with_redis.log.exists() else ""
    r = redis.Redis(port=stack_with_redis.redis_port, decode_responses=True)
    values = []
    for db in (0, 1, 2):
        r.execute_command("SELECT", db)
        for k in r.scan_iter("*"):
            t = r.type(k)
            values.append(str(r.get(k) if t == "string" else r.hgetall(k) if t == "hash"
                              else r.smembers(k) if t == "set" else ""))
    haystack = "\n".join(OUTPUTS) + log + "\n".join(values)
    for p in PASSWORDS:
        assert p not in haystack
