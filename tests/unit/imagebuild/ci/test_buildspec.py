"""buildspec.yml is checked against CodeBuild's structure, and phases run as CodeBuild runs
them (real bash; no daemon): order, one shell per phase, finally, and what a failure skips."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild.ci.buildspec import (
    ci_problems,
    codebuild_environment,
    parse_buildspec,
    run_buildspec,
)
from imagebuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[4]


def spec(phases: str, extra: str = "") -> str:
    return f"version: 0.2\n{extra}phases:\n{phases}"


def test_the_projects_buildspec_is_valid_and_calls_inv_ci() -> None:
    buildspec = parse_buildspec((ROOT / "buildspec.yml").read_text())
    assert [phase.name for phase in buildspec.phases] == [
        "install",
        "pre_build",
        "build",
        "post_build",
    ]
    build = next(phase for phase in buildspec.phases if phase.name == "build")
    assert build.commands == (".venv/bin/inv ci",)
    assert "build-logs/**/*" in buildspec.artifact_files
    # Either cache of infra/codebuild.tf: the project sets INVOKE_CI_CACHE, not this file.
    assert ci_problems(buildspec) == []


@pytest.mark.parametrize(
    ("phases", "extra", "problem"),
    [
        (
            "  build:\n    commands:\n      - .venv/bin/inv ci\n"
            "      - docker buildx create --use\n",
            "",
            "phases.build: 'docker buildx create --use' is not an inv task",
        ),
        (
            "  build:\n    commands:\n      - .venv/bin/inv build --push\n",
            "",
            "phases.build must run `.venv/bin/inv ci` and nothing else",
        ),
        (
            "  build:\n    commands:\n      - .venv/bin/inv ci\n",
            "env:\n  variables:\n    INVOKE_CI_CACHE: registry\n",
            "env.variables sets INVOKE_CI_CACHE: the CodeBuild project chooses it",
        ),
        (
            "  post_build:\n    commands:\n      - .venv/bin/inv history\n"
            "    finally:\n      - curl -X POST https://example.invalid/hook\n",
            "",
            "phases.post_build: 'curl -X POST https://example.invalid/hook' is not an inv task",
        ),
    ],
)
def test_a_buildspec_that_is_not_the_projects_ci_is_named(
    phases: str, extra: str, problem: str
) -> None:
    problems = ci_problems(parse_buildspec(spec(phases, extra)))
    assert any(found.startswith(problem) for found in problems), problems


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (spec("  build:\n    commands: [true]\n", "enviroment: {}\n"), "unknown key(s) enviroment"),
        (spec("  biuld:\n    commands: [true]\n"), "phases has unknown key(s) biuld"),
        (spec("  build:\n    command: [true]\n"), "phases.build has unknown key(s) command"),
        (spec("  build:\n    commands: true\n"), "must be a list of strings"),
        ("version: 0.1\nphases: {}\n", "version must be 0.2"),
        (spec("  build:\n    on-failure: RETRY\n    commands: [true]\n"), "ABORT or CONTINUE"),
        ("version: 0.2\nphases: [\n", "not valid YAML"),
    ],
)
def test_a_wrong_buildspec_is_refused_with_the_key_named(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_buildspec(text)


def test_phases_run_in_order_in_one_shell_each_with_codebuilds_variables(tmp_path: Path) -> None:
    text = spec(
        "  install:\n    commands:\n      - mkdir sub && cd sub\n      - pwd > ../install-pwd\n"
        '  build:\n    commands:\n      - export X=1\n      - echo "$X $GREETING $CODEBUILD_BUILD_ID" > out\n'
        "  post_build:\n    commands:\n      - echo $CODEBUILD_BUILD_SUCCEEDING > succeeding\n",
        "env:\n  variables:\n    GREETING: hello\n",
    )
    lines: list[str] = []
    env = {"PATH": "/usr/bin:/bin", **codebuild_environment(tmp_path, "abc123")}
    result = run_buildspec(parse_buildspec(text), tmp_path, env, lines.append)
    assert result.succeeded
    assert (tmp_path / "install-pwd").read_text().strip() == str(tmp_path / "sub")
    assert (tmp_path / "out").read_text().split() == ["1", "hello", env["CODEBUILD_BUILD_ID"]]
    assert (tmp_path / "succeeding").read_text().strip() == "1"
    assert "[Container] Running command echo $CODEBUILD_BUILD_SUCCEEDING > succeeding" in lines


def test_a_failed_build_still_runs_post_build_and_finally(tmp_path: Path) -> None:
    text = spec(
        "  build:\n    commands:\n      - 'false'\n      - touch never\n"
        "    finally:\n      - touch finally-ran\n"
        "  post_build:\n    commands:\n      - echo $CODEBUILD_BUILD_SUCCEEDING > succeeding\n"
    )
    result = run_buildspec(parse_buildspec(text), tmp_path, {"PATH": "/usr/bin:/bin"}, print)
    assert not result.succeeded
    assert result.status("build") == "FAILED" and result.status("post_build") == "SUCCEEDED"
    assert result.phases[0].failed_command == "false"
    assert not (tmp_path / "never").exists() and (tmp_path / "finally-ran").exists()
    assert (tmp_path / "succeeding").read_text().strip() == "0"


def test_a_failed_pre_build_skips_build_and_post_build_unless_it_continues(tmp_path: Path) -> None:
    phases = (
        "  pre_build:\n{extra}    commands:\n      - exit 3\n"
        "  build:\n    commands:\n      - touch built\n"
        "  post_build:\n    commands:\n      - touch posted\n"
    )
    aborted = run_buildspec(
        parse_buildspec(spec(phases.format(extra=""))), tmp_path, {"PATH": "/bin"}, print
    )
    assert [phase.status for phase in aborted.phases] == ["FAILED", "SKIPPED", "SKIPPED"]
    assert aborted.phases[0].exit_code == 3
    assert not (tmp_path / "built").exists()
    continued = run_buildspec(
        parse_buildspec(spec(phases.format(extra="    on-failure: CONTINUE\n"))),
        tmp_path,
        {"PATH": "/usr/bin:/bin"},
        print,
    )
    assert [phase.status for phase in continued.phases] == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert (tmp_path / "built").exists() and (tmp_path / "posted").exists()
