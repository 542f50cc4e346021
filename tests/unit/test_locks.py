"""The requirement files are locks: every package pinned with its hashes, and the layer's at the tests' versions.

`make lock` compiles each requirements*.txt from its .in file (pip-tools, --generate-hashes); `make`
installs them with --require-hashes. These tests fail if a hand edit breaks either promise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER_LOCK = ROOT / "layers/common/requirements.txt"
LOCKS = [LAYER_LOCK, ROOT / "requirements-dev.txt", ROOT / "requirements-sam.txt", ROOT / "requirements-checks.txt"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")  # extras kept: pip needs them


def requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{normalized name: (version, hashes)} of a pip-compile'd file (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pin = PIN.match(line)
        assert pin, f"{path.name}: not an exact pin: {line!r}"
        name = re.sub(r"[-_.]+", "-", pin.group(1)).lower()
        found[name] = (pin.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return found


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name if p != LAYER_LOCK else "layer")
def test_every_package_is_pinned_with_its_hashes(lock: Path) -> None:
    found = requirements(lock)
    assert found
    assert all(hashes for _, hashes in found.values()), [n for n, (_, h) in found.items() if not h]
    # and its .in file's direct pins are what the lock holds
    for line in lock.with_suffix(".in").read_text().splitlines():
        pin = PIN.match(line.strip())
        if pin:
            name = re.sub(r"[-_.]+", "-", pin.group(1)).lower()
            assert found[name][0] == pin.group(2), name


def test_the_layer_ships_a_whole_pinned_sdk_at_the_versions_the_tests_run() -> None:
    layer, dev = requirements(LAYER_LOCK), requirements(ROOT / "requirements-dev.txt")
    # pynamodb brings botocore into the layer, where it shadows the runtime's; so the layer ships boto3 and
    # everything under it, pinned, rather than half an SDK next to the runtime's other half
    assert {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "python-dateutil"} <= set(layer)
    assert {name: version for name, (version, _) in layer.items()} == {name: dev[name][0] for name in layer}


def test_pip_comes_first_at_the_locked_version() -> None:
    # requirements-pip.txt is installed into each virtual environment before its lock (python3.11's own pip
    # cannot install locks whose packages are required with extras): the pip the dev lock pins
    first = requirements(ROOT / "requirements-pip.txt")
    assert set(first) == {"pip"} and first["pip"] == requirements(ROOT / "requirements-dev.txt")["pip"]
