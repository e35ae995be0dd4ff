"""Reasons for missed steps, from two reports, their contexts and the Dockerfile."""

from __future__ import annotations

from pathlib import Path

from imagebuild.build.cache_check import (
    UNEXPLAINED,
    StepVerdict,
    copy_sources,
    explain,
    stage_graph,
)
from imagebuild.engine.report import BuildReport, StepRecord

ROOT = Path(__file__).resolve().parents[4]
DOCKERFILE = (ROOT / "docker/tts/Dockerfile").read_text()
NAMES = [
    ("base", "[base 2/2] RUN python3 -m venv /opt/venv"),
    (
        "torch",
        "[torch 1/2] COPY requirements/torch-${TORCH_VARIANT}.txt /tmp/requirements/torch.txt",
    ),
    ("torch", "[torch 2/2] RUN pip install torch"),
    (
        "dependencies",
        "[dependencies 1/2] COPY requirements/service.txt /tmp/requirements/service.txt",
    ),
    ("dependencies", "[dependencies 2/2] RUN pip install service"),
    ("builder", "[builder 1/2] COPY src/audiobook_tts /app/audiobook_tts"),
    ("builder", "[builder 2/2] RUN compileall"),
    ("runtime", "[runtime 1/3] COPY docker/tts/audiobook-tts /usr/local/bin/audiobook-tts"),
    ("runtime", "[runtime 2/3] COPY --from=builder /app /app"),
    ("runtime", "[runtime 3/3] WORKDIR /home/tts"),
]


def report(
    missed: set[str], args: dict[str, str] | None = None, warnings: tuple[str, ...] = ()
) -> BuildReport:
    steps = tuple(
        StepRecord(name=name, stage=stage, cached=not any(m in name for m in missed), seconds=1.0)
        for stage, name in reversed(NAMES)  # completion order is not Dockerfile order
    )
    return BuildReport(
        target="runtime",
        tags=(),
        cache_mode="inline",
        started_at="",
        wall_seconds=1.0,
        succeeded=True,
        steps=steps,
        context_bytes=0,
        log_path="x.log",
        warnings=warnings,
        build_args=tuple((args or {"TORCH_VARIANT": "cpu"}).items()),
    )


def reasons(verdicts: list[StepVerdict]) -> dict[str, str]:
    return {v.name.split("]")[0] + "]": v.reason for v in verdicts if not v.cached}


def test_stage_graph_reads_args_and_dependencies() -> None:
    declared, depends = stage_graph(DOCKERFILE)
    assert list(declared) == [
        "wheelhouse",
        "base",
        "installer",
        "torch",
        "cuda-libraries",
        "dependencies",
        "engines",
        "builder",
        "runtime",
    ]
    assert "TORCH_VARIANT" in declared["torch"] and "PIP_INDEX_URL" in declared["dependencies"]
    assert "ENGINES" in declared["engines"]
    assert depends["runtime"] >= {"engines", "builder"} and depends["engines"] == {
        "installer",
        "wheelhouse",
    }
    assert "wheelhouse" in depends["torch"]


def test_copy_sources() -> None:
    assert copy_sources("[builder 1/2] COPY src/audiobook_tts /app/audiobook_tts") == [
        "src/audiobook_tts"
    ]
    assert copy_sources("[runtime 2/3] COPY --from=builder /app /app") is None
    assert copy_sources("[x 1/1] RUN true") is None


def test_a_changed_source_file_explains_the_copy_and_its_cascade() -> None:
    context = {"src/audiobook_tts/app.py": "1", "requirements/service.txt": "1"}
    after = {"src/audiobook_tts/app.py": "2", "requirements/service.txt": "1"}
    verdicts = explain(
        report({"builder", "[runtime 2/3]", "[runtime 3/3]"}),
        report(set()),
        after,
        context,
        DOCKERFILE,
    )
    found = reasons(verdicts)
    assert found["[builder 1/2]"] == "context file changed: src/audiobook_tts/app.py (changed)"
    assert found["[builder 2/2]"].startswith("an earlier step of this stage rebuilt")
    assert found["[runtime 2/3]"] == "a stage it builds on rebuilt (builder)"
    assert all(v.expected for v in verdicts)
    assert [v.name for v in verdicts] == [name for _, name in NAMES]


def test_a_changed_build_arg_explains_the_stages_that_declare_it() -> None:
    verdicts = explain(
        report({"torch 2/2"}, {"TORCH_VARIANT": "cuda"}), report(set()), {}, {}, DOCKERFILE
    )
    assert reasons(verdicts)["[torch 2/2]"] == "build arg changed: TORCH_VARIANT"


def test_a_new_instruction_and_an_unexplained_miss() -> None:
    previous = report(set())
    current = report({"torch 2/2"})
    renamed = BuildReport(
        **{
            **current.__dict__,
            "steps": tuple(
                s
                if "torch 2/2" not in s.name
                else StepRecord(s.name + " --upgrade", s.stage, False, 1.0)
                for s in current.steps
            ),
        }
    )
    assert reasons(explain(renamed, previous, {}, {}, DOCKERFILE))["[torch 2/2]"].startswith(
        "instruction changed"
    )
    verdicts = explain(current, previous, {}, {}, DOCKERFILE)
    miss = [v for v in verdicts if not v.cached]
    assert miss[0].reason == UNEXPLAINED and not miss[0].expected


def test_an_unreachable_cache_source_is_named() -> None:
    warning = (
        "importing cache manifest from 127.0.0.1:5999/x:cache: failed to configure "
        "registry cache importer: connection refused"
    )
    verdicts = explain(
        report({"torch 2/2"}, warnings=(warning,)), report(set()), {}, {}, DOCKERFILE
    )
    miss = next(v for v in verdicts if not v.cached)
    assert miss.reason.startswith("cache source unreachable: importing cache manifest")
    assert not miss.expected


def test_without_an_earlier_build_every_miss_is_expected() -> None:
    verdicts = explain(report({"["}), None, {}, None, DOCKERFILE)
    assert all(v.expected and v.reason.startswith("no earlier build") for v in verdicts)
