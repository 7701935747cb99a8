"""mailrobot-admind, the admin HTTP JSON API (schemas/admin-api.yaml,
docs/accounts.md), against real Redis and Kafka: every endpoint, the
bearer token, the body limit, 4xx errors that name the field, TLS with a
CA made here, the audit events on <prefix>.audit from the API and from
mailrobotctl (read back with confluent-kafka), the API and the CLI seeing
one directory, and passwords that never show in logs or events."""

import http.client
import json
import os
import socket
import ssl
import subprocess
import time
from types import SimpleNamespace

import pytest

from mailrobot_harness import BIN, free_port, read_records, unique
from outbound_harness import make_certificates
from test_directory import ctl, make_site, pw, reset_tokens, PASSWORDS

ADMIND = BIN / "mailrobot-admind"
TOKEN = "t0ken-" + "A" * 30


@pytest.fixture(scope="module")
def stack_with_redis(kafka):
    kafka.start("redis")
    kafka.redis_port = int(kafka.env["MR_REDIS_PORT"])
    kafka.log = kafka.dir / "admind.log"
    return kafka


def start_admind(site, tmp, token=TOKEN, mode=0o600, wait=True, **keys):
    token_file = tmp / f"token-{unique('k')}"
    token_file.write_text(token + "\n")
    token_file.chmod(mode)
    port = free_port()
    cfg = tmp / f"admind-{unique('c')}.conf"
    log = tmp / f"admind-{unique('l')}.log"
    own = "".join(line + "\n" for line in site.config.read_text().splitlines()
                  if not line.startswith("log_file"))
    lines = own + f"log_file = {log}\nadmind_listen = 127.0.0.1:{port}\n" \
        f"admind_token_file = {token_file}\nadmind_body_limit = 16KiB\n"
    lines += "".join(f"{k} = {v}\n" for k, v in keys.items())
    cfg.write_text(lines)
    proc = subprocess.Popen([str(ADMIND), "-C", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    if wait:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    return SimpleNamespace(proc=proc, port=port, log=log, cfg=cfg)


def stop(d):
    d.proc.terminate()
    assert d.proc.wait(timeout=30) == 0


@pytest.fixture(scope="module")
def api_site(stack_with_redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("admind")
    site = make_site(stack_with_redis, tmp)
    site.domain = f"{unique('a').lower()}.example"
    d = start_admind(site, tmp)
    site.admind, site.tmp = d, tmp
    yield site
    stop(d)
    text = d.log.read_text()
    assert text
    for p in PASSWORDS + [TOKEN]:
        assert p not in text


def api(site, method, path, body=None, token=TOKEN, raw=None, port=None, context=None,
        headers=None):
    port = port or site.admind.port
    conn = (http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
            if context else http.client.HTTPConnection("127.0.0.1", port, timeout=30))
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    res = conn.getresponse()
    text = res.read()
    conn.close()
    assert res.getheader("Content-Type") == "application/json"
    return SimpleNamespace(status=res.status, json=json.loads(text) if text else None,
                           headers=res, text=text)


def err(res, status, field):
    assert res.status == status, (res.status, res.json)
    e = res.json["error"]
    assert e["status"] == status and e["field"] == field, e
    assert e["message"]
    return e["message"]


# --- auth, limits, bad requests ------------------------------------------------------


def test_auth(api_site):
    res = api(api_site, "GET", "/domains", token=None)
    err(res, 401, None)
    assert res.headers.getheader("WWW-Authenticate").startswith("Bearer")
    err(api(api_site, "GET", "/domains", token="wrong-" + "A" * 30), 401, None)
    err(api(api_site, "GET", "/domains", token=TOKEN + "x"), 401, None)
    err(api(api_site, "GET", "/domains", token=None, headers={"Authorization": TOKEN}), 401,
        None)
    assert api(api_site, "GET", "/domains").status == 200
    err(api(api_site, "GET", "/nothing"), 404, None)
    res = api(api_site, "PATCH", "/domains")
    assert res.status == 405 and res.headers.getheader("Allow") == "GET"


def test_body_limit(api_site):
    body = {"address": f"x@{api_site.domain}", "password": "p" * 20000}
    msg = err(api(api_site, "POST", "/accounts", body), 413, "body")
    assert "admind_body_limit" in msg and "p" * 50 not in msg
    # a wrong token is refused before the body is read
    err(api(api_site, "POST", "/accounts", body, token="nope"), 401, None)


def test_bad_requests(api_site):
    d = api_site.domain
    assert api(api_site, "PUT", f"/domains/{d}").status == 201
    err(api(api_site, "POST", "/accounts", raw=b"{not json"), 400, "body")
    err(api(api_site, "POST", "/accounts", raw=b"[1]"), 400, "body")
    err(api(api_site, "POST", "/accounts"), 400, "body")
    short = "short9"
    msg = err(api(api_site, "POST", "/accounts", {"address": f"al@{d}", "password": short}),
              400, "password")
    assert short not in msg and "shorter than" in msg
    err(api(api_site, "POST", "/accounts", {"address": "not an address", "password": pw()}),
        400, "address")
    err(api(api_site, "POST", "/accounts", {"address": f"al@{d}", "password": pw(),
                                             "admin": True}), 400, "admin")
    err(api(api_site, "POST", "/accounts", {"address": f"al@{d}"}), 400, "password")
    err(api(api_site, "POST", "/accounts", {"address": 7, "password": pw()}), 400, "address")
    err(api(api_site, "PUT", "/domains/bad..domain"), 400, "domain")
    err(api(api_site, "PUT", f"/aliases/x@{d}", {"targets": "a@b.org"}), 400, "targets")
    err(api(api_site, "PUT", f"/aliases/x@{d}", {"targets": [1]}), 400, "targets/0")


# --- every endpoint ------------------------------------------------------------------


def test_domains(api_site):
    d = f"{unique('dom').lower()}.example"
    assert api(api_site, "PUT", f"/domains/{d.upper()}").json == {"domain": d, "catch_all": None}
    err(api(api_site, "PUT", f"/domains/{d}"), 409, "domain")
    assert {"domain": d, "catch_all": None} in api(api_site, "GET", "/domains").json["domains"]
    password = pw()
    assert api(api_site, "POST", "/accounts", {"address": f"bob@{d}",
                                               "password": password}).status == 201
    res = api(api_site, "PUT", f"/domains/{d}/catch-all", {"target": f"bob@{d}"})
    assert res.json == {"domain": d, "catch_all": f"bob@{d}"}
    assert api(api_site, "GET", f"/domains/{d}").json["catch_all"] == f"bob@{d}"
    err(api(api_site, "PUT", f"/domains/{d}/catch-all", {}), 400, "target")
    err(api(api_site, "PUT", "/domains/nope.example/catch-all", {"target": "x@y.org"}), 404,
        "domain")
    err(api(api_site, "PUT", f"/domains/{d}/catch-all", {"target": f"ghost@{d}"}), 400,
        "target")
    assert api(api_site, "PUT", f"/domains/{d}/catch-all", {"target": None}).status == 200
    assert ctl(api_site, "domain", "catch-all", d).out == "(none)\n"
    err(api(api_site, "DELETE", f"/domains/{d}"), 409, "domain")
    assert api(api_site, "DELETE", f"/accounts/bob@{d}").status == 200
    assert api(api_site, "DELETE", f"/domains/{d}").json == {"removed": d}
    err(api(api_site, "DELETE", f"/domains/{d}"), 404, "domain")


def test_accounts_and_passwords(api_site):
    d = api_site.domain
    a = f"{unique('acc').lower()}@{d}"
    password = pw()
    res = api(api_site, "POST", "/accounts", {"address": a.upper(), "password": password,
                                              "recovery": "rec@home.example"})
    assert res.status == 201
    assert res.json["address"] == a and res.json["recovery"] == "rec@home.example"
    assert res.json["reset_pending"] is False and res.json["owns"] == []
    assert "password" not in res.text.decode()
    err(api(api_site, "POST", "/accounts", {"address": a, "password": pw()}), 409, "address")
    err(api(api_site, "POST", "/accounts", {"address": f"x@nothosted.example",
                                             "password": pw()}), 400, "address")
    assert a in api(api_site, "GET", f"/accounts?domain={d}").json["accounts"]
    assert a in api(api_site, "GET", "/accounts").json["accounts"]
    assert api(api_site, "GET", f"/accounts/{a}").json["created"]
    # the CLI sees what the API made, and the other way round
    ctl(api_site, "account", "check", a, input=password + "\n")
    b = f"{unique('cli').lower()}@{d}"
    ctl(api_site, "account", "create", b, input=pw() + "\n")
    assert api(api_site, "GET", f"/accounts/{b}").json["address"] == b
    # password: with the old one, a wrong old one, or none (the admin token)
    new = pw("new")
    err(api(api_site, "POST", f"/accounts/{a}/password",
            {"old_password": "wrong-password-1", "new_password": new}), 403, "old_password")
    err(api(api_site, "POST", f"/accounts/{a}/password",
            {"old_password": password, "new_password": "short"}), 400, "new_password")
    assert api(api_site, "POST", f"/accounts/{a}/password",
               {"old_password": password, "new_password": new}).status == 200
    ctl(api_site, "account", "check", a, input=new + "\n")
    newer = pw("admin")
    assert api(api_site, "POST", f"/accounts/{a}/password", {"new_password": newer}).status == 200
    ctl(api_site, "account", "check", a, input=newer + "\n")
    err(api(api_site, "POST", f"/accounts/nobody@{d}/password", {"new_password": pw()}), 404,
        "address")
    # removal with all its data
    assert api(api_site, "PUT", f"/aliases/al-{a}", {"targets": [a]}).status == 200
    assert api(api_site, "DELETE", f"/accounts/{a}").json == {"removed": a}
    err(api(api_site, "GET", f"/accounts/{a}"), 404, "address")
    err(api(api_site, "GET", f"/aliases/al-{a}"), 404, "address")
    err(api(api_site, "DELETE", f"/accounts/{a}"), 404, "address")
    assert not [k for k in api_site.r.scan_iter(f"{api_site.prefix}:*") if a in k]
    ctl(api_site, "account", "remove", b)


def test_reset(api_site):
    d = api_site.domain
    a = f"{unique('res').lower()}@{d}"
    recovery = f"{unique('r').lower()}@home.example"
    api(api_site, "POST", "/accounts", {"address": a, "password": pw(), "recovery": recovery})
    err(api(api_site, "POST", f"/accounts/nobody@{d}/reset"), 404, "address")
    res = api(api_site, "POST", f"/accounts/{a}/reset")
    assert res.status == 202 and res.json == {"address": a, "sent_to": recovery}
    assert api(api_site, "GET", f"/accounts/{a}").json["reset_pending"] is True
    [token] = reset_tokens(api_site, recovery)
    err(api(api_site, "POST", "/reset", {"token": "A" * 43, "new_password": pw()}), 403, "token")
    err(api(api_site, "POST", "/reset", {"token": token, "new_password": "short"}), 400,
        "new_password")
    new = pw("reset")
    assert api(api_site, "POST", "/reset", {"token": token, "new_password": new}).json == \
        {"changed": a}
    ctl(api_site, "account", "check", a, input=new + "\n")
    err(api(api_site, "POST", "/reset", {"token": token, "new_password": pw()}), 403, "token")
    no_recovery = f"{unique('nr').lower()}@{d}"
    api(api_site, "POST", "/accounts", {"address": no_recovery, "password": pw()})
    err(api(api_site, "POST", f"/accounts/{no_recovery}/reset"), 409, "address")


def test_aliases(api_site):
    d = api_site.domain
    a = f"{unique('to').lower()}@{d}"
    api(api_site, "POST", "/accounts", {"address": a, "password": pw()})
    al = f"{unique('al').lower()}@{d}"
    res = api(api_site, "PUT", f"/aliases/{al}", {"targets": [a, "Off@Site.example"]})
    assert res.json == {"address": al, "targets": sorted([a, "off@site.example"])}
    assert api(api_site, "GET", f"/aliases/{al}").json["targets"] == res.json["targets"]
    assert al in api(api_site, "GET", f"/aliases?domain={d}").json["aliases"]
    assert sorted(ctl(api_site, "alias", "show", al).out.split()) == res.json["targets"]
    loop = f"{unique('lp').lower()}@{d}"
    api(api_site, "PUT", f"/aliases/{loop}", {"targets": [al]})
    err(api(api_site, "PUT", f"/aliases/{al}", {"targets": [loop]}), 409, "targets")
    err(api(api_site, "PUT", f"/aliases/{al}", {"targets": []}), 400, "targets")
    err(api(api_site, "PUT", f"/aliases/{al}", {"targets": [a, f"ghost@{d}"]}), 400,
        "targets/1")
    err(api(api_site, "PUT", f"/aliases/{a}", {"targets": [al]}), 409, "address")
    assert api(api_site, "DELETE", f"/aliases/{loop}").status == 200
    assert api(api_site, "DELETE", f"/aliases/{al}").status == 200
    err(api(api_site, "DELETE", f"/aliases/{al}"), 404, "address")


def test_backup_and_restore(api_site):
    d = api_site.domain
    a = f"{unique('bk').lower()}@{d}"
    api(api_site, "POST", "/accounts", {"address": a, "password": pw()})
    whole = api(api_site, "GET", "/backup")
    assert whole.status == 200 and a in [x["address"] for x in whole.json["accounts"]]
    one = api(api_site, "GET", f"/backup?account={a}")
    assert [x["address"] for x in one.json["accounts"]] == [a]
    err(api(api_site, "GET", f"/backup?account=nobody@{d}"), 404, "address")
    cli = json.loads(ctl(api_site, "backup", "--account", a).out)
    assert cli["accounts"] == one.json["accounts"]
    api(api_site, "DELETE", f"/accounts/{a}")
    res = api(api_site, "POST", "/restore", raw=one.text)
    assert res.json == {"restored": True}
    assert api(api_site, "GET", f"/backup?account={a}").json["accounts"] == one.json["accounts"]
    assert api(api_site, "POST", "/restore", raw=one.text).status == 200    # idempotent
    bad = json.loads(one.text)
    bad["accounts"][0]["password"] = "plain"
    msg = err(api(api_site, "POST", "/restore", bad), 400, "/accounts/0/password")
    assert "plain" not in msg
    err(api(api_site, "POST", "/restore", raw=b"{"), 400, "body")


# --- audit ---------------------------------------------------------------------------


def test_audit_events(api_site):
    d = api_site.domain
    a = f"{unique('au').lower()}@{d}"
    b = f"{unique('auc').lower()}@{d}"
    password = pw()
    api(api_site, "POST", "/accounts", {"address": a, "password": password})
    api(api_site, "POST", "/accounts", {"address": a, "password": pw()})          # 409
    api(api_site, "POST", f"/accounts/{a}/password", {"new_password": pw()})
    ctl(api_site, "account", "create", b, input=pw() + "\n")
    ctl(api_site, "account", "passwd", b, "--admin", input=pw() + "\n")
    ctl(api_site, "account", "remove", b)
    api(api_site, "DELETE", f"/accounts/{a}")
    recs = read_records(api_site.brokers, "mailrobot.audit", expect=7,
                        where=lambda r: r.key.decode() in (a, b))
    events = [json.loads(r.value) for r in recs]
    for e in events:
        assert set(e) == {"v", "type", "at", "actor", "operation", "target", "result"}
        assert e["v"] == 1 and e["type"] == "audit"
    got = sorted((e["actor"], e["operation"], e["target"], e["result"]) for e in events)
    assert got == sorted([
        ("api", "account.create", a, "ok"), ("api", "account.create", a, "conflict"),
        ("api", "account.password", a, "ok"), ("api", "account.remove", a, "ok"),
        ("cli", "account.create", b, "ok"), ("cli", "account.password", b, "ok"),
        ("cli", "account.remove", b, "ok")])
    raw = b"".join(r.value for r in recs)
    for p in PASSWORDS + [TOKEN]:
        assert p.encode() not in raw


# --- TLS, the token file -------------------------------------------------------------


def test_tls(api_site, tmp_path):
    make_certificates(tmp_path)
    d = start_admind(api_site, tmp_path, admind_tls_cert=tmp_path / "server.pem",
                     admind_tls_key=tmp_path / "server.key")
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        res = api(api_site, "GET", "/domains", port=d.port, context=context)
        assert res.status == 200
        err(api(api_site, "GET", "/domains", port=d.port, context=context, token="x"), 401,
            None)
        with pytest.raises(ssl.SSLError):
            api(api_site, "GET", "/domains", port=d.port,
                context=ssl.create_default_context())
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            api(api_site, "GET", "/domains", port=d.port)     # plain HTTP to a TLS port
    finally:
        stop(d)


def test_token_file(api_site, tmp_path):
    d = start_admind(api_site, tmp_path, mode=0o644)
    try:
        assert api(api_site, "GET", "/domains", port=d.port).status == 200
    finally:
        stop(d)
    assert "group or others" in d.log.read_text()
    d = start_admind(api_site, tmp_path, token="short", wait=False)
    assert d.proc.wait(timeout=15) == 1
    assert b"admind_token_file" in d.proc.stderr.read()
    cfg = tmp_path / "none.conf"
    cfg.write_text(api_site.config.read_text() + "admind_listen = 127.0.0.1:0\n")
    res = subprocess.run([str(ADMIND), "-C", str(cfg)], capture_output=True, timeout=15,
                         env={"PATH": "/usr/bin:/bin"})
    assert res.returncode == 1 and b"admind_token_file is not set" in res.stderr
