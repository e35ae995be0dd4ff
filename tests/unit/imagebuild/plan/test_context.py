""".dockerignore evaluated as BuildKit does (the integration suite checks it against BuildKit)."""

from __future__ import annotations

from pathlib import Path

from imagebuild.plan.context import ContextManifest, changed_files, is_ignored, parse_dockerignore
from imagebuild.plan.dockerfile import logical_lines

ROOT = Path(__file__).resolve().parents[4]


def test_allow_list_semantics() -> None:
    patterns = parse_dockerignore(
        "# comment\n*\n!src/pkg/\n!requirements/*.txt\n**/__pycache__\n**/*.pyc\n"
    )
    assert is_ignored(patterns, "README.md")
    assert is_ignored(patterns, "tests/unit/test_x.py")
    assert not is_ignored(patterns, "src/pkg/app.py")
    assert not is_ignored(patterns, "src/pkg/sub/deep.py")
    assert is_ignored(patterns, "src/other/app.py")
    assert is_ignored(patterns, "src/pkg/__pycache__/app.cpython-311.pyc")
    assert is_ignored(patterns, "src/pkg/sub/x.pyc")
    assert not is_ignored(patterns, "requirements/service.txt")
    assert is_ignored(patterns, "requirements/service.in")
    assert is_ignored(patterns, "requirements/nested/a.txt")


def test_last_match_wins_and_paths_are_cleaned() -> None:
    patterns = parse_dockerignore("/docs/\n!docs/keep.md\ndocs/keep.md\n./build/../logs\n")
    assert is_ignored(patterns, "docs/keep.md")
    assert is_ignored(patterns, "logs/a.log")
    assert not is_ignored(patterns, "build/a")


def test_project_context_holds_only_what_the_image_needs() -> None:
    paths = [item.path for item in ContextManifest.of(ROOT).files]
    assert "src/audiobook_tts/app.py" in paths
    assert "requirements/service.txt" in paths and "requirements/torch-cpu.txt" in paths
    assert "docker/tts/audiobook-tts" in paths
    assert not [p for p in paths if p.startswith(("tests/", "build-logs/", "src/imagebuild/"))]
    assert "README.md" not in paths and "requirements/dev.txt" not in paths


def test_changed_files() -> None:
    assert changed_files({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == [
        ("b", "changed"),
        ("c", "added"),
    ]
    assert changed_files({"a": "1"}, {}) == [("a", "removed")]


def test_every_file_the_dockerfile_copies_is_in_the_context() -> None:
    """Each COPY source of docker/tts/Dockerfile (a build arg read as any value) matches files,
    and every one of them is sent: a lock left off the allow-list fails the build."""
    import re

    root = Path(__file__).resolve().parents[4]
    sent = {item.path for item in ContextManifest.of(root).files}
    sources: list[str] = []
    for _, line in logical_lines((root / "docker/tts/Dockerfile").read_text()):
        if line.startswith("COPY ") and "--from=" not in line:
            parts = [part for part in line.split()[1:] if not part.startswith("--")]
            sources += parts[:-1]
    assert "requirements/piper.txt" in sources and "requirements/layers.txt" in sources
    for source in sources:
        pattern = re.sub(r"\*+", "*", re.sub(r"\$\{[A-Z_]+\}", "*", source))
        matched = [str(path.relative_to(root)) for path in root.glob(pattern)]
        files = [
            str(item.relative_to(root))
            for name in matched
            for item in ([root / name] if (root / name).is_file() else (root / name).rglob("*"))
            if item.is_file() and "__pycache__" not in item.parts
        ]
        assert files, f"COPY {source} matches no file"
        missing = [name for name in files if name not in sent]
        assert missing == [], f"COPY {source}: not in the build context: {missing}"
