"""Building frozen records from values that were validated already (private).

The lifecycle and the approval engine derive records from validated parts thousands of times a
second (replay); running every field's converter again on each step would only cost time.  The
builders here set the slots directly; they are generated once per record class and set of changed
fields, so a rebuild costs one attribute store per field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

_REBUILDERS: dict[tuple[type, frozenset[str]], Callable[[Any, dict[str, Any]], Any]] = {}
_BUILDERS: dict[type, Callable[..., Any]] = {}


def _compile(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    code = compile(source, f"<potrack._fast {name}>", "exec")
    exec(code, namespace)
    fn: Callable[..., Any] = namespace[name]
    return fn


def rebuild(base: T, changes: dict[str, Any]) -> T:
    """``base`` with ``changes``, without re-running the record's converters."""
    cls = type(base)
    key = (cls, frozenset(changes))
    fn = _REBUILDERS.get(key)
    if fn is None:
        lines = ["def rebuild(base, changes):", "    new = _new(_cls)"]
        for field in attrs.fields(cls):  # type: ignore[arg-type]
            source = f"changes[{field.name!r}]" if field.name in changes else f"base.{field.name}"
            lines.append(f"    _set(new, {field.name!r}, {source})")
        lines.append("    return new")
        namespace = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
        fn = _REBUILDERS[key] = _compile("rebuild", "\n".join(lines), namespace)
    result: T = fn(base, changes)
    return result


def build(cls: type[T], values: dict[str, Any]) -> T:
    """A ``cls`` record from ``values``; fields not given take their defaults (no converters)."""
    new = object.__new__(cls)
    for field in attrs.fields(cls):  # type: ignore[arg-type]
        if field.name in values:
            value = values[field.name]
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            value = field.default.factory()
        else:
            value = field.default
        object.__setattr__(new, field.name, value)
    return new


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """A function taking every field of ``cls`` positionally, in order, and building the record."""
    fn = _BUILDERS.get(cls)
    if fn is None:
        names = [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
        lines = [f"def make({', '.join(names)}):", "    new = _new(_cls)"]
        lines += [f"    _set(new, {n!r}, {n})" for n in names]
        lines.append("    return new")
        namespace = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
        fn = _BUILDERS[cls] = _compile("make", "\n".join(lines), namespace)
    return fn
