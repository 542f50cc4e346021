"""What a function's cold start imports: each handler module, imported as Lambda imports it (in a fresh
interpreter), brings in the modules its requests use and not another function's machinery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# The layer's package and the functions as this checkout has them (never an installed copy elsewhere).
PYTHONPATH = os.pathsep.join([str(ROOT / "layers" / "common"), str(ROOT)])


def imported_by(module: str) -> set[str]:
    """The mediexchange modules a fresh interpreter holds after importing `module`."""
    code = (
        f"import json, sys, {module}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'mediexchange')))\n"
        "print(sys.modules['mediexchange'].__file__)"
    )
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    modules, package = done.stdout.splitlines()
    assert package == str(ROOT / "layers" / "common" / "mediexchange" / "__init__.py")
    return set(json.loads(modules))


def test_the_export_function_does_not_import_the_import_machinery() -> None:
    # When the export function's handler module is imported in a fresh interpreter, as a cold start imports it
    modules = imported_by("functions.mis_export.app")
    # Then it finds the clinic by its key without the import use case and the order rules it applies
    assert "mediexchange.clients" in modules
    assert modules & {"mediexchange.importing", "mediexchange.ordering"} == set()
