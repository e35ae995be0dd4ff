"""Each image layer's part of the locks, written as one small lock per layer.

    python3 lockslice.py --map layers.txt --out DIR [--arch ARCH] LOCK...

Reads the LOCKs a build selects (lowest first: torch's, the service's, then each engine's)
and writes DIR/<layer>.txt for every layer of the map (requirements/layers.txt, written by
`inv lock`): the `name==version` blocks, with their `--hash` lines, of the packages that
layer installs. A layer with nothing selected gets an empty file. A package two locks share
is taken from the first (the locks agree on its version, or this stops). A package the map
does not know (a lock edited without `inv lock`) goes to DIR/unassigned.txt, and is named.

Each layer's stage of docker/tts/Dockerfile copies its file alone: BuildKit keys that copy by
the file's content, so a bumped package re-runs its own layer's install and no other.

With --arch (the build's TARGETARCH), a lock `X.txt` that has an architecture's own lock
`X-ARCH.txt` beside it is read from that one: torch-cpu-arm64.txt pins another torch.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

UNASSIGNED = "unassigned"
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


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


def pin(block: str) -> str:
    return block.split()[0].rstrip("\\")


def parse_map(text: str) -> dict[str, list[str]]:
    """layers.txt: `layer: package package ...` lines -> layer -> packages."""
    layers: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, packages = line.partition(":")
            layers[name.strip()] = packages.split()
    return layers


def slices(layer_map: dict[str, list[str]], locks: list[tuple[str, str]]) -> dict[str, str]:
    """layer -> its slice, for every layer of the map and `unassigned`."""
    layer_of = {package: layer for layer, packages in layer_map.items() for package in packages}
    parts: dict[str, list[str]] = {layer: [] for layer in [*layer_map, UNASSIGNED]}
    taken: dict[str, tuple[str, str]] = {}
    for lock_name, text in locks:
        for name, block in blocks(text):
            if name in taken:
                first_lock, first_pin = taken[name]
                if pin(block) != first_pin:
                    raise SystemExit(
                        f"lockslice: {lock_name} pins {pin(block)} but {first_lock} pins "
                        f"{first_pin}: run `inv lock` (the locks must agree)"
                    )
                continue
            taken[name] = (lock_name, pin(block))
            parts[layer_of.get(name, UNASSIGNED)].append(block)
    return {layer: "".join(found) for layer, found in parts.items()}


def for_architecture(path: Path, arch: str) -> Path:
    """`X-ARCH.txt` where it exists beside `X.txt`, else `X.txt`."""
    own = path.with_name(f"{path.stem}-{arch}{path.suffix}") if arch else path
    return own if own.exists() else path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("locks", type=Path, nargs="+", help="the selected locks, lowest first")
    parser.add_argument("--map", type=Path, required=True, help="requirements/layers.txt")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write slices to")
    parser.add_argument(
        "--arch", default="", help="target architecture: read X-ARCH.txt for X.txt where present"
    )
    args = parser.parse_args(argv)
    layer_map = parse_map(args.map.read_text(encoding="utf-8"))
    locks = []
    for path in args.locks:
        own = for_architecture(path, args.arch)
        locks.append((own.name, own.read_text(encoding="utf-8")))
    found = slices(layer_map, locks)
    args.out.mkdir(parents=True, exist_ok=True)
    for layer, text in found.items():
        (args.out / f"{layer}.txt").write_text(text, encoding="utf-8")
    used = sorted(layer for layer, text in found.items() if text)
    print(f"lockslice: {len(used)} of {len(found)} layers have packages: {' '.join(used)}")
    if found[UNASSIGNED]:
        names = " ".join(pin(block) for _, block in blocks(found[UNASSIGNED]))
        print(
            f"lockslice: not in {args.map.name}, installed in the '{UNASSIGNED}' layer: "
            f"{names} (`inv lock` gives each its own)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
