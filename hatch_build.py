"""Wheel build hook: compile potrack's matching engine with mypyc when a C compiler is present.

``potrack/_matchcore.py`` (the engine behind ``potrack.matching``) is ordinary typed Python; mypyc
turns it into a C extension that runs the batch 1.3–1.6 times as fast (``docs/benchmarks.md``).
The compiled module needs nothing at run time beyond the four runtime dependencies.  Without a C
compiler, or with ``POTRACK_PURE_PYTHON=1``, or when compiling fails, the wheel is the plain
Python one — the same behaviour, slower — and the build says why.  ``POTRACK_REQUIRE_COMPILED=1``
turns that fallback into an error (CI uses it, so a broken compile cannot pass unnoticed).
Editable installs always run the plain Python source.

``potrack.matching.engine()`` tells which engine an installation runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ENGINE = "potrack/_matchcore.py"
# The compiler: mypyc ships with mypy.  Pinned like the development mypy, so that every wheel is
# compiled by the version CI tested.
MYPYC = ("mypy==2.4.1", "setuptools>=70")


def _flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to something other than empty or 0."""
    return os.environ.get(name, "") not in ("", "0")


def _why_not() -> str | None:
    """Why the engine cannot be compiled here, or None when it can be tried."""
    if _flag("POTRACK_PURE_PYTHON"):
        return "POTRACK_PURE_PYTHON is set"
    if sys.implementation.name != "cpython":
        return f"mypyc needs CPython, this is {sys.implementation.name}"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler!r} is not on the PATH)"
    return None


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds the compiled engine to standard wheels (see the module docstring)."""

    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        if _why_not() is not None:
            return []
        # mypyc type-checks the package, so it needs the runtime dependencies' types as well.
        return [*MYPYC, *self.metadata.core.dependencies]

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        reason = _why_not()
        if reason is None:
            self._workdir = tempfile.mkdtemp(prefix="potrack-mypyc-")
            reason = self._compile(Path(self._workdir), build_data)
        if reason is not None:
            if _flag("POTRACK_REQUIRE_COMPILED"):
                raise RuntimeError(f"potrack: the matching engine could not be compiled: {reason}")
            self.app.display_warning(
                f"potrack: the matching engine stays plain Python ({reason}); "
                "everything works, the batch matcher is slower"
            )

    def _compile(self, workdir: Path, build_data: dict[str, Any]) -> str | None:
        """Compile the engine in ``workdir``; add the extension modules to the wheel.  Returns
        why it failed, or None."""
        shutil.copytree(Path(self.root, "src", "potrack"), workdir / "potrack")
        self.app.display_info("potrack: compiling the matching engine with mypyc")
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", ENGINE],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
        )
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        built = sorted((workdir / "potrack").glob(f"_matchcore*{suffix}"))
        if done.returncode or not built:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            return f"mypyc exited with {done.returncode}:\n{tail}"
        for path in built:  # the module and mypyc's runtime library for it
            build_data["force_include"][str(path)] = f"potrack/{path.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        return None

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        workdir = getattr(self, "_workdir", None)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
