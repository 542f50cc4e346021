"""The layer's bytecode (layers/common/Makefile, `bytecode`): compiled by python3.13, the functions' runtime,
as .pyc that Lambda uses as they are, the same bytes from any build folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

RUNTIME = shutil.which("python3.13")
LAYER = ROOT / "layers" / "common"
PYC = "__pycache__/clients.cpython-313.pyc"


def runs(python: str | None) -> bool:
    return python is not None and subprocess.run([python, "-c", "pass"], capture_output=True).returncode == 0


def runtime(code: str) -> str:
    """What python3.13 prints running `code`."""
    assert RUNTIME is not None
    return subprocess.run([RUNTIME, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def build_bytecode(artifacts: Path) -> Path:
    """The package copied into a layer folder as the build copies it, then the Makefile's `bytecode` step."""
    shutil.copytree(
        LAYER / "mediexchange", artifacts / "python" / "mediexchange", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        ["make", "-s", "-C", str(LAYER), "bytecode", f"ARTIFACTS_DIR={artifacts}"], check=True, env=os.environ
    )
    return artifacts / "python" / "mediexchange"


@pytest.mark.skipif(not runs(RUNTIME), reason="no python3.13 on PATH (the functions' runtime)")
def test_the_layer_is_compiled_for_the_runtime_the_same_from_any_folder(tmp_path: Path) -> None:
    # When the layer's bytecode is built in two different folders
    first, second = build_bytecode(tmp_path / "one"), build_bytecode(tmp_path / "two")
    # Then every module has its python3.13 .pyc, byte for byte the same in both
    sources = sorted(p.relative_to(first) for p in first.rglob("*.py"))
    compiled = sorted(p.relative_to(first) for p in first.rglob("*.cpython-313.pyc"))
    assert len(compiled) == len(sources) > 30
    assert all((first / c).read_bytes() == (second / c).read_bytes() for c in compiled)
    # And each is hash-based and unchecked (flags 0b01): used without reading its source, whatever its mtime;
    # and it names its source where Lambda mounts the layer, not where it was built
    assert int.from_bytes((first / PYC).read_bytes()[4:8], "little") == 0b01
    assert (
        runtime(f"""
import importlib.util, marshal
data = open({str(first / PYC)!r}, "rb").read()
assert data[:4] == importlib.util.MAGIC_NUMBER
assert data[8:16] == importlib.util.source_hash(open({str(first / "clients.py")!r}, "rb").read())
print(marshal.loads(data[16:]).co_filename)
""")
        == "/opt/python/mediexchange/clients.py"
    )
