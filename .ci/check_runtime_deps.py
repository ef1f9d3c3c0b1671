"""Fail unless the installed distributions are exactly potrack, its four runtime dependencies and
what those depend on (run inside a venv where only ``pip install .`` happened)."""

from __future__ import annotations

import re
import sys
from importlib import metadata

ALLOWED_DIRECT = {"attrs", "cattrs", "babel", "py-moneyed"}
TOOLING = {"pip", "setuptools", "wheel"}


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(dist: str) -> set[str]:
    found = set()
    for req in metadata.requires(dist) or []:
        if ";" in req and "extra ==" in req.split(";", 1)[1]:
            continue
        marker_ok = True
        if ";" in req:
            from pip._vendor.packaging.markers import Marker  # the venv has pip, not packaging

            marker_ok = Marker(req.split(";", 1)[1]).evaluate()
        if marker_ok:
            found.add(canon(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]))
    return found


def main() -> int:
    direct = requirements("potrack")
    if direct != {canon(n) for n in ALLOWED_DIRECT}:
        print(
            f"potrack declares runtime dependencies {sorted(direct)}, expected {sorted(ALLOWED_DIRECT)}"
        )
        return 1
    closure, todo = set(), list(direct)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo.extend(requirements(name))
    installed = (
        {canon(d.metadata["Name"]) for d in metadata.distributions()} - TOOLING - {"potrack"}
    )
    extra = installed - closure
    print(f"runtime closure: {sorted(closure)}")
    print(f"installed:       {sorted(installed)}")
    if extra:
        print(f"installed beyond the allowed closure: {sorted(extra)}")
        return 1
    return import_everything()


def import_everything() -> int:
    """Every potrack module imports with the runtime dependencies alone (optional extras are
    imported only when a function that needs them is called)."""
    import importlib
    import pkgutil

    import potrack

    names = [m.name for m in pkgutil.walk_packages(potrack.__path__, "potrack.")]
    for name in names:
        importlib.import_module(name)
    leaked = sorted({"pandas", "polars", "matplotlib"} & set(sys.modules))
    print(f"imported {len(names)} modules; optional libraries imported: {leaked or 'none'}")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
