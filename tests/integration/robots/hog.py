#!/usr/bin/python3
"""Tries to take more memory and more files than an exec robot may, and
reports in ./report what the limits let it have."""
import os

with open("report", "w") as report:
    try:
        b = bytearray(200 << 20)
        report.write("got 200 MiB\n")
    except MemoryError:
        report.write("no memory\n")
    fd = 0
    try:
        while True:
            fd = os.open("/dev/null", os.O_RDONLY)
    except OSError:
        report.write(f"highest fd {fd}\n")
