"""The edge between Invoke and the package: settings from the context, errors as one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from imagebuild.errors import ImageBuildError
from imagebuild.plan.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

ROOT = Path(__file__).resolve().parents[2]


def settings_from(config: Any) -> Settings:
    """The `imagebuild` section of an Invoke config (invoke.yaml, INVOKE_IMAGEBUILD_*)."""
    section = config.get("imagebuild", None) or {}
    return Settings.from_mapping(dict(section), ROOT)


def with_registry_auth(settings: Settings, flag: bool) -> Settings:
    """A task's --registry-auth: the setting turned on for this one command."""
    return replace(settings, registry_auth=True) if flag else settings


def say(line: str) -> None:
    print(line, flush=True)


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Repeatable flags: `--x a --x b` and `--x a,b` both give (a, b)."""
    items: list[str] = []
    for value in values or []:
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(items)


def clear_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Print an ImageBuildError as one line (plus its log path) and exit non-zero."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ImageBuildError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            raise SystemExit(130) from None

    return wrapper
