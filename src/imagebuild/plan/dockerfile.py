"""Reading the stages of a Dockerfile, so that `--target` is checked against the file itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import UsageError

_FROM = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?(?P<base>\S+)(?:\s+AS\s+(?P<name>[A-Za-z0-9_.-]+))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Stage:
    """One `FROM ... AS name` of a Dockerfile."""

    name: str
    base: str
    line: int
    index: int


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, instruction) with continuations joined and comments dropped."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        yield start, " ".join(part for part in buffer if part)
        buffer = []
    if buffer:
        yield start, " ".join(part for part in buffer if part)


def parse_stages(text: str) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for line, instruction in logical_lines(text):
        if not instruction.upper().startswith("FROM "):
            continue
        match = _FROM.match(instruction)
        if match is None:
            raise UsageError(f"line {line}: cannot read this FROM instruction: {instruction}")
        index = len(stages)
        name = match.group("name") or str(index)
        stages.append(Stage(name=name, base=match.group("base"), line=line, index=index))
    return tuple(stages)


def read_stages(dockerfile: Path) -> tuple[Stage, ...]:
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read Dockerfile {dockerfile}: {error.strerror}") from error
    stages = parse_stages(text)
    if not stages:
        raise UsageError(f"{dockerfile} has no FROM instruction")
    return stages


def check_target(stages: tuple[Stage, ...], target: str) -> Stage:
    """Return the stage named `target`, or fail with the list of valid names."""
    for stage in stages:
        if stage.name == target:
            return stage
    names = ", ".join(stage.name for stage in stages)
    raise UsageError(f"no stage named {target!r}; the Dockerfile's stages are: {names}")
