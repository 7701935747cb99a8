#!/usr/bin/python3
"""A robot that records what it was given: standard input, argv, the
environment, working directory, identity, umask and resource limits, into
<directory>/<ns>.stdin and <ns>.json. The directory is argv[1]. Used by the
exec tests to compare mailrobot's exec robots with Postfix's local(8)."""
import json
import os
import resource
import sys
import time

out = sys.argv[1]
name = f"{time.time_ns()}-{os.getpid()}"
data = sys.stdin.buffer.read()
umask = os.umask(0o077)
limits = {n: resource.getrlimit(getattr(resource, n)) for n in
          ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE",
           "RLIMIT_CORE")}
# The environment as execve(2) gave it (Python itself adds LC_CTYPE to
# os.environ under LANG=C).
with open("/proc/self/environ", "rb") as f:
    environment = dict(v.decode().split("=", 1) for v in f.read().split(b"\0") if v)
record = {"argv": sys.argv, "env": environment, "cwd": os.getcwd(), "uid": os.getuid(),
          "gid": os.getgid(), "groups": os.getgroups(), "umask": umask, "limits": limits,
          "pgid_is_pid": os.getpgid(0) == os.getpid(), "sid_is_pid": os.getsid(0) == os.getpid()}
with open(f"{out}/{name}.stdin.tmp", "wb") as f:
    f.write(data)
with open(f"{out}/{name}.json.tmp", "w") as f:
    json.dump(record, f)
os.rename(f"{out}/{name}.stdin.tmp", f"{out}/{name}.stdin")
os.rename(f"{out}/{name}.json.tmp", f"{out}/{name}.json")
