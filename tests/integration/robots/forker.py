#!/usr/bin/python3
"""Tries to start 20 child processes and reports in ./report how many it
got (RLIMIT_NPROC counts every process of the robot's user)."""
import os
import time

children = []
for _ in range(20):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    children.append(pid)
with open("report", "w") as report:
    report.write(f"forked {len(children)}\n")
for pid in children:
    os.waitpid(pid, 0)
