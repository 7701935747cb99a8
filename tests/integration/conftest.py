"""pytest fixtures shared by the integration suites (see mailrobot_harness)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mailrobot_harness import BIN, Stack  # noqa: E402


def pytest_sessionstart(session):
    for program in ("mailrobot-ingest", "mailrobot-ingestd", "mailrobotctl"):
        if not (BIN / program).exists():
            pytest.exit(f"{BIN / program} is missing: build first (tests/run does)", 2)


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    s.stop_all()


@pytest.fixture(scope="module")
def kafka(stack):
    """A real Kafka broker with mailrobot's topics, and a config for it."""
    stack.write_config()
    stack.start("kafka")
    stack.kafka_init()
    return stack
