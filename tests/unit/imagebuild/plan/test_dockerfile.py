"""Reading stages from a Dockerfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild.build.cache_check import ancestors, stage_graph
from imagebuild.errors import UsageError
from imagebuild.locks.layers import all_layers, layers_of, stale_layer_files
from imagebuild.plan.dockerfile import check_target, logical_lines, parse_stages, read_stages

ROOT = Path(__file__).resolve().parents[4]


def test_project_dockerfile_stages_in_order() -> None:
    """The hand-written stages around a stage per package layer, in the map's order."""
    stages = read_stages(ROOT / "docker/tts/Dockerfile")
    layers = [f"layer-{layer.name}" for layer in all_layers(layers_of(ROOT / "requirements"))]
    assert [s.name for s in stages] == [
        "wheelhouse",
        "base",
        "installer",
        "package-slices",
        *layers,
        "checked",
        "builder",
        "runtime",
    ]
    assert stages[1].base == "${BASE_IMAGE}"
    assert stages[2].base == "${INSTALLER_IMAGE}"
    assert layers[:2] == ["layer-cuda-libraries", "layer-torch"]  # the large ones at the bottom


def test_each_layer_is_installed_apart_and_joined_with_copy_link() -> None:
    """No package stage builds on the base or on another: a new base or a bumped package
    rebuilds only its own layer. Each takes its slice from package-slices alone, and the
    runtime joins each with COPY --link, a layer independent of those below."""
    text = (ROOT / "docker/tts/Dockerfile").read_text()
    _, depends = stage_graph(text)
    layers = [f"layer-{layer.name}" for layer in all_layers(layers_of(ROOT / "requirements"))]
    for stage in layers:
        assert depends[stage] == {"installer", "package-slices", "wheelhouse"}, stage
        assert ancestors(stage, depends) <= {"installer", "wheelhouse", "package-slices"}
        own = text[text.index(f"AS {stage}\n") :].split("\nFROM ", 1)[0]
        name = stage.removeprefix("layer-")
        assert f"COPY --from=package-slices /slices/{name}.txt /tmp/slice.txt" in own
        assert f"install-layer {name} " in own
    assert depends["checked"] == {"installer", *layers}
    assert depends["runtime"] == {"base", "checked", "builder", *layers}
    runtime = text[text.index("AS runtime") :]
    copies = [line for _, line in logical_lines(runtime) if line.startswith("COPY")]
    assert all(line.startswith("COPY --link ") for line in copies), copies
    assert [line for line in copies if "--from=layer-" in line] == [
        f"COPY --link --from={stage} /layer/ /" for stage in layers
    ]
    assert "pip check" not in runtime  # the check's verdict is copied, not run again


def test_the_generated_regions_are_what_the_locks_give() -> None:
    """`inv lock` writes requirements/layers.txt and the Dockerfile's stages; a lock changed
    without it fails here (and in `nox -s lint`)."""
    assert stale_layer_files(ROOT / "requirements", ROOT / "docker/tts/Dockerfile") == []


def test_continuations_comments_platform_flags_and_unnamed_stages() -> None:
    text = "# c\nARG X=1\nfrom --platform=$BUILDPLATFORM alpine as One\nRUN a \\\n  # inside\n  b\nFROM scratch\n"
    stages = parse_stages(text)
    assert [(s.name, s.base, s.line) for s in stages] == [("One", "alpine", 3), ("1", "scratch", 7)]
    assert (4, "RUN a b") in list(logical_lines(text))


def test_check_target_lists_stages() -> None:
    stages = parse_stages("FROM a AS x\nFROM b AS y\n")
    assert check_target(stages, "y").name == "y"
    with pytest.raises(UsageError, match="x, y"):
        check_target(stages, "z")


def test_missing_or_empty_dockerfile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read Dockerfile"):
        read_stages(tmp_path / "nope")
    (tmp_path / "Dockerfile").write_text("# nothing\n")
    with pytest.raises(UsageError, match="no FROM"):
        read_stages(tmp_path / "Dockerfile")


def test_the_image_joins_whisper_to_the_hash_the_service_pins() -> None:
    from audiobook_tts.listening.recognizer import IMAGE_MODEL, PACKAGED_SHA256

    text = (ROOT / "docker/tts/after-install/whisper-base").read_text()
    assert PACKAGED_SHA256 in text
    assert f'model="$1{IMAGE_MODEL}"' in text
