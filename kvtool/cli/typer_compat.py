"""Typer 0.29 and later without pydantic at start-up: kvtool's option types coerced the way Typer
0.28 (Click) did, so `kvtool count DB` does not pay for importing pydantic.

Typer 0.29 turns every option value through a pydantic `TypeAdapter`; importing pydantic is
most of its start-up cost (`python -X importtime`, cProfile: `typer._adapters` 0.48 of 0.55 s
under the profiler; bench/startup.py: CPU best 0.23 s on 0.28, 0.39 s on 0.29 on a loaded
machine). kvtool's options are only str, int, float, bool, Path, list[str] and enums: for those,
this module gives Typer a coercion built from Typer's own pydantic-free helpers
(`coerce_cli_choice`, `coerce_cli_path`), and leaves every other type to Typer. On Typer 0.28
there is nothing to do (Click's types coerce).
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin


def install() -> None:
    """Route kvtool's simple option types past pydantic; a no-op where Typer has no such seam."""
    # Typer's private modules, named at run time: they exist from 0.29 on (and mypy checks
    # against whichever Typer is installed).
    try:
        core: Any = importlib.import_module("typer.core")
        coercion: Any = importlib.import_module("typer._coercion")
        bad_parameter: Any = importlib.import_module("typer._click.exceptions").BadParameter
        param_types: Any = importlib.import_module("typer._param_types")
    except ImportError:  # Typer 0.28: Click's own types
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None or getattr(original, "kvtool_light", False):
        return

    @dataclass(frozen=True)
    class LightParam(coercion.RuntimeParam):  # type: ignore[misc]
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation: Any = self.annotation
            info: Any = self.parameter_info
            if annotation is bool:
                return value if isinstance(value, bool) else _flag(value, param, ctx, bad_parameter)
            if annotation is str:
                return _text(value)
            if get_origin(annotation) is list:
                return [_text(item) for item in value]
            if annotation is int or annotation is float:
                return _number(annotation, value, info, param, ctx, bad_parameter)
            if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
                try:
                    return param_types.coerce_cli_choice(
                        value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
                    )
                except ValueError as exc:
                    raise bad_parameter(str(exc), ctx=ctx, param=param) from None
            path = value if isinstance(value, Path) else Path(_text(value))
            return param_types.coerce_cli_path(path, info, path_type=Path, param=param, ctx=ctx)

    def build(descriptor: Any) -> Any:
        if _is_simple(descriptor):
            return LightParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
        return original(descriptor)

    build.kvtool_light = True  # type: ignore[attr-defined]
    core.build_runtime_param = build


def _is_simple(descriptor: Any) -> bool:
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None or info.clamp:
        return False
    if info.path_type is not None or getattr(info, "click_type", None) is not None:
        return False
    annotation = descriptor.annotation
    if annotation in (bool, str, int, float, Path) or repr(annotation) == "list[str]":
        return True
    return isinstance(annotation, type) and issubclass(annotation, enum.Enum)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return str(value)


def _flag(value: Any, param: Any, ctx: Any, error: type[Exception]) -> bool:
    word = _text(value).strip().lower()
    if word in ("1", "true", "t", "yes", "y", "on"):
        return True
    if word in ("", "0", "false", "f", "no", "n", "off"):
        return False
    raise error(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)  # type: ignore[call-arg]


def _number(
    kind: type[Any], value: Any, info: Any, param: Any, ctx: Any, error: type[Exception]
) -> Any:
    # Click's wording, which Typer 0.28 printed: "'x' is not a valid integer." (or "int range")
    try:
        number = kind(_text(value).strip()) if not isinstance(value, kind) else value
    except (TypeError, ValueError):
        ranged = info.min is not None or info.max is not None
        name = ("int" if kind is int else "float") + " range" if ranged else kind.__name__
        name = "integer" if name == "int" else name
        raise error(f"{value!r} is not a valid {name}.", ctx=ctx, param=param) from None  # type: ignore[call-arg]
    low, high = info.min, info.max
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = (
            f"{low}<=x<={high}"
            if low is not None and high is not None
            else f"x>={low}"
            if low is not None
            else f"x<={high}"
        )
        raise error(f"{number} is not in the range {bounds}.", ctx=ctx, param=param)  # type: ignore[call-arg]
    return number


def plain_required_arguments() -> None:
    """Usage lines name a required argument `DB`, not Typer's `{DB}` (braces read as a choice
    or a shell brace expansion; man pages, git and Click write required operands bare). Typer
    0.28 builds the usage name in `TyperArgument.make_metavar`, 0.29 in `_usage_display_name`,
    which also appends "..." to a variadic argument's metavar that says "FILE..." already."""
    argument: Any = importlib.import_module("typer.core").TyperArgument
    if getattr(argument, "kvtool_plain", False):
        return
    for name in ("_usage_display_name", "make_metavar"):
        original = getattr(argument, name, None)
        if original is not None:
            setattr(argument, name, _unbraced(original))
    argument.kvtool_plain = True


def _unbraced(original: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = original(*args, **kwargs)
        if isinstance(name, str) and name.startswith("{") and "}" in name:
            end = name.index("}")
            name = name[1:end] + name[end + 1 :]
        if isinstance(name, str) and name.endswith("......"):
            name = name[:-3]
        return name

    return wrapper
