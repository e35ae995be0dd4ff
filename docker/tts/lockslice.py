"""The part of a pip-compile lock that one layer of the image installs.

    python3 lockslice.py LOCK [--minus LOWER]... [--only REGEX | --except REGEX] [--arch ARCH]

Prints the requirement blocks of LOCK (`name==version` and its `--hash` lines) whose name
is in no LOWER lock, filtered by name with --only or --except. Each installer stage of
docker/tts/Dockerfile installs its slice with --no-deps, so no package lands in two layers
(numpy is in the service and the csm locks) and no layer is built on another: each can be
cached, rebuilt and joined into the runtime on its own.

With --arch (the build's TARGETARCH), a lock `X.txt` that has an architecture's own lock
`X-ARCH.txt` beside it is read from that one: torch-cpu-arm64.txt pins another torch.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(text: str) -> list[tuple[str, str]]:
    """(normalised name, block text) for each pinned requirement of a lock, in order."""
    found: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            found.append((normalise(match.group(1)), [line]))
        elif found and line[:1].isspace() and line.strip():
            found[-1][1].append(line)
    return [(name, "\n".join(lines) + "\n") for name, lines in found]


def names(text: str) -> set[str]:
    return {name for name, _ in blocks(text)}


def lock_slice(
    text: str, lower: list[str], only: str | None = None, exclude: str | None = None
) -> str:
    taken: set[str] = set().union(*(names(item) for item in lower))
    kept = []
    for name, block in blocks(text):
        if name in taken:
            continue
        if only is not None and not re.fullmatch(only, name):
            continue
        if exclude is not None and re.fullmatch(exclude, name):
            continue
        kept.append(block)
    return "".join(kept)


def for_architecture(path: Path, arch: str) -> Path:
    """`X-ARCH.txt` where it exists beside `X.txt`, else `X.txt`."""
    own = path.with_name(f"{path.stem}-{arch}{path.suffix}") if arch else path
    return own if own.exists() else path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path, help="the pip-compile lock to slice")
    parser.add_argument(
        "--minus", type=Path, action="append", default=[], help="a lower layer's lock"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--only", help="keep only packages whose name matches this regex")
    group.add_argument("--except", dest="exclude", help="drop packages whose name matches")
    parser.add_argument(
        "--arch", default="", help="target architecture: read X-ARCH.txt for X.txt where present"
    )
    args = parser.parse_args(argv)
    lower = [for_architecture(path, args.arch).read_text(encoding="utf-8") for path in args.minus]
    lock = for_architecture(args.lock, args.arch)
    sys.stdout.write(lock_slice(lock.read_text(encoding="utf-8"), lower, args.only, args.exclude))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
