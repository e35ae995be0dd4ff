""".dockerignore, evaluated the way BuildKit does, to show and fingerprint the build context.

Rules (moby/patternmatcher): blank lines and `#` comments are skipped; a leading `!`
re-includes; `*` and `?` stay within one path element, `**` spans any number of them; a
pattern that matches a directory matches everything below it; the last matching pattern
wins. An integration test checks this module against the context BuildKit really receives.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _translate(pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : end]
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return "^" + "".join(out) + "$"


def _clean(text: str) -> str:
    parts: list[str] = []
    for part in text.strip("/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts:
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts) or "."


def parse_dockerignore(text: str) -> tuple[Pattern, ...]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = _clean(line)
        patterns.append(Pattern(cleaned, exclusion, re.compile(_translate(cleaned))))
    return tuple(patterns)


def _parents_and_self(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: count + 1]) for count in range(len(parts))]


def is_ignored(patterns: tuple[Pattern, ...], path: str) -> bool:
    ignored = False
    candidates = _parents_and_self(path)
    for pattern in patterns:
        if any(pattern.regex.match(candidate) for candidate in candidates):
            ignored = not pattern.exclusion
    return ignored


def _may_reinclude(patterns: tuple[Pattern, ...], directory: str) -> bool:
    """Whether an exclusion pattern could bring back something below an ignored directory."""
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        text = pattern.text
        if text.startswith(directory + "/") or "**" in text or text.split("/")[0] in ("*", "?"):
            return True
        first = text.split("/")[0]
        if any(char in first for char in "*?[") and re.match(
            _translate(first), directory.split("/")[0]
        ):
            return True
    return False


@dataclass(frozen=True)
class ContextFile:
    path: str
    size: int
    sha256: str


def context_files(root: Path, dockerignore: Path | None = None) -> Iterator[ContextFile]:
    """Every file the build context sends, with its size and content hash, in path order."""
    ignore_file = dockerignore or root / ".dockerignore"
    patterns = parse_dockerignore(ignore_file.read_text()) if ignore_file.exists() else ()
    for directory, dirnames, filenames in os.walk(root):
        relative_dir = os.path.relpath(directory, root)
        relative_dir = "" if relative_dir == "." else relative_dir.replace(os.sep, "/")
        kept: list[str] = []
        for name in sorted(dirnames):
            path = f"{relative_dir}/{name}" if relative_dir else name
            if not is_ignored(patterns, path) or _may_reinclude(patterns, path):
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = f"{relative_dir}/{name}" if relative_dir else name
            full = Path(directory) / name
            if is_ignored(patterns, path) or not full.is_file():
                continue
            data = full.read_bytes()
            yield ContextFile(path, len(data), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class ContextManifest:
    files: tuple[ContextFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.files)

    def digests(self) -> dict[str, str]:
        return {item.path: item.sha256 for item in self.files}

    def to_json(self) -> str:
        return json.dumps(self.digests(), sort_keys=True, indent=0)

    @classmethod
    def of(cls, root: Path) -> ContextManifest:
        return cls(tuple(sorted(context_files(root), key=lambda item: item.path)))


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[tuple[str, str]]:
    """(path, what happened) between two context manifests."""
    changes: list[tuple[str, str]] = []
    for path in sorted(set(before) | set(after)):
        if path not in before:
            changes.append((path, "added"))
        elif path not in after:
            changes.append((path, "removed"))
        elif before[path] != after[path]:
            changes.append((path, "changed"))
    return changes
