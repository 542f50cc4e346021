"""Integration tests: `python -m devserver` (what `make run` runs) as a real process, over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from devserver.server import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
MEDIEXCHANGE = str(Path(sys.executable).parent / "mediexchange")  # the command `make` installs beside the venv's python


@dataclass(frozen=True)
class LocalServer:
    url: str
    dynamodb_url: str
    portal_api_key: str
    console_url: str = ""  # the one-time operator sign-in link the server printed

    def cli(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """Run the `mediexchange` command installed beside this interpreter, against the local store."""
        env = {**os.environ, **(env or {}), "DYNAMODB_ENDPOINT_URL": self.dynamodb_url}
        done = subprocess.run(
            [MEDIEXCHANGE, *args],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.splitlines()

    def create_clinic(
        self, name: str, client_key: str | None = None, timezone: str = "Europe/Moscow"
    ) -> dict[str, str]:
        args = ["clinic", "create", "--name", name, "--timezone", timezone, "--json"]
        created: dict[str, str] = json.loads(self.cli(*args, *(["--client-key", client_key] if client_key else []))[-1])
        return created

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@contextmanager
def local_server(**settings: str) -> Iterator[LocalServer]:
    """`python -m devserver` on a free port with the given environment settings, stopped on leaving."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TABLE")}
    env.update(PORT=str(port), PYTHONUNBUFFERED="1", **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "devserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while len(printed) < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        name, _, value = line.strip().partition("=")
        if name in ("DYNAMODB_ENDPOINT_URL", "PORTAL_API_KEY", "CONSOLE_URL"):
            printed[name] = value
    try:
        assert len(printed) == 3, "the local server did not print its three lines"
        url, store, key = f"http://127.0.0.1:{port}", printed["DYNAMODB_ENDPOINT_URL"], printed["PORTAL_API_KEY"]
        yield LocalServer(url, store, key, printed["CONSOLE_URL"])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    # A small time budget at moto's pace, so a test-sized document (thousands of records) already goes
    # to the background worker while the seed sample is still answered at once.
    with local_server(IMPORT_TIME_BUDGET_SECONDS="5", WRITE_ITEMS_PER_SECOND="500") as started:
        yield started
