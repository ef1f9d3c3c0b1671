"""Reading settings files (TOML or JSON) for the loaders of policies."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from potrack.exceptions import Problem, ValidationError


def read_settings(
    source: str | Path,
    text: str | None,
    format: str | None,
    error: type[ValidationError] = ValidationError,
) -> tuple[str, str, str, Any]:
    """``(name, kind, text, data)`` of a TOML or JSON settings file (or of ``text``); the kind
    is ``format``, else guessed from the name (``.json``, else TOML).

    Raises:
        ValidationError (or ``error``): the text is not valid TOML or JSON.
        OSError: the file cannot be read.
    """
    name = str(source)
    if text is None:
        text = Path(source).read_text(encoding="utf-8")
    kind = format or ("json" if name.endswith(".json") else "toml")
    try:
        data = json.loads(text) if kind == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise error(name, [Problem("", f"not valid {kind.upper()}: {err}")]) from None
    return name, kind, text, data
