"""AWS CodeBuild's buildspec, read and run the way CodeBuild runs it, so that `buildspec.yml`
is executed here and not only written.

What is modelled (from the buildspec reference and "build phase transitions"): version 0.2;
`env.variables` exported; the phases install, pre_build, build and post_build in that order;
the commands of a phase run one by one in one shell (a `cd` or an `export` carries over), and
the first that fails ends the phase; its `finally` commands run either way; a failed install
or pre_build skips straight to the end, a failed build still runs post_build (with
CODEBUILD_BUILD_SUCCEEDING=0), unless a phase says `on-failure: CONTINUE`.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imagebuild.errors import ImageBuildError, UsageError
from imagebuild.output import Printer

PHASES = ("install", "pre_build", "build", "post_build")
TOP_LEVEL = {
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
}
ENV_KEYS = {
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
}
PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
ARTIFACT_KEYS = {
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
    "secondary-artifacts",
}
CACHE_KEYS = {"key", "fallback-keys", "action", "paths"}
ON_FAILURE = ("ABORT", "CONTINUE")


@dataclass(frozen=True)
class Phase:
    name: str
    commands: tuple[str, ...]
    finally_commands: tuple[str, ...] = ()
    on_failure: str = "ABORT"


@dataclass(frozen=True)
class Buildspec:
    variables: tuple[tuple[str, str], ...]
    phases: tuple[Phase, ...]
    artifact_files: tuple[str, ...] = ()
    shell: str = "bash"


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"buildspec: {where} must be a list of strings")
    return tuple(value)


def _mapping(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"buildspec: {where} must be a mapping")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UsageError(
            f"buildspec: {where} has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return value


def parse_buildspec(text: str) -> Buildspec:
    """The buildspec, checked against CodeBuild's structure; a wrong key is named."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"buildspec: not valid YAML: {error}") from error
    document = _mapping(data, "the document", TOP_LEVEL)
    if str(document.get("version")) != "0.2":
        raise UsageError("buildspec: version must be 0.2 (0.1 runs each command in a new shell)")
    env = _mapping(document.get("env") or {}, "env", ENV_KEYS)
    raw_variables = _mapping(
        env.get("variables") or {}, "env.variables", set(env.get("variables") or {})
    )
    variables = tuple((str(key), str(value)) for key, value in raw_variables.items())
    phases_raw = _mapping(document.get("phases"), "phases", set(PHASES))
    phases: list[Phase] = []
    for name in PHASES:
        if name not in phases_raw:
            continue
        body = _mapping(phases_raw[name] or {}, f"phases.{name}", PHASE_KEYS)
        on_failure = str(body.get("on-failure", "ABORT"))
        if on_failure not in ON_FAILURE:
            raise UsageError(f"buildspec: phases.{name}.on-failure must be ABORT or CONTINUE")
        finally_commands = body.get("finally")
        phases.append(
            Phase(
                name,
                _strings(body.get("commands"), f"phases.{name}.commands"),
                _strings(finally_commands, f"phases.{name}.finally"),
                on_failure,
            )
        )
    artifacts = _mapping(document.get("artifacts") or {}, "artifacts", ARTIFACT_KEYS)
    if "cache" in document:
        _mapping(document["cache"], "cache", CACHE_KEYS)
    return Buildspec(
        variables=variables,
        phases=tuple(phases),
        artifact_files=_strings(artifacts.get("files"), "artifacts.files"),
        shell=str(env.get("shell", "bash")),
    )


# What the project's buildspec may run: the virtual environment, its locked tools, and `inv`.
SETUP_COMMANDS = ("python3 -m venv .venv", ".venv/bin/pip install -r requirements/dev.txt")
INV = ".venv/bin/inv "
# Chosen by the CodeBuild project (infra/codebuild.tf), never by the buildspec: with the
# Docker Server `inline`, with the ECR registry cache `registry`.
PROJECT_CHOSEN = ("INVOKE_CI_CACHE",)


def ci_problems(spec: Buildspec) -> list[str]:
    """Why this buildspec is not the project's CI: each command is the setup or an `inv` task
    (nothing a person would not run), the build phase is `inv ci`, and the cache is left to
    the project. Empty when it is."""
    problems: list[str] = []
    for phase in spec.phases:
        for command in (*phase.commands, *phase.finally_commands):
            if command not in SETUP_COMMANDS and not command.startswith(INV):
                problems.append(f"phases.{phase.name}: {command!r} is not an inv task")
    build = next((phase for phase in spec.phases if phase.name == "build"), None)
    if build is None or build.commands != (INV + "ci",):
        problems.append("phases.build must run `.venv/bin/inv ci` and nothing else")
    problems += [
        f"env.variables sets {name}: the CodeBuild project chooses it ({name} in "
        "infra/codebuild.tf)"
        for name, _ in spec.variables
        if name in PROJECT_CHOSEN
    ]
    return problems


@dataclass
class PhaseResult:
    name: str
    status: str  # SUCCEEDED, FAILED or SKIPPED
    failed_command: str = ""
    exit_code: int = 0


@dataclass
class BuildspecRun:
    phases: list[PhaseResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return all(phase.status != "FAILED" for phase in self.phases)

    def status(self, name: str) -> str:
        return next((phase.status for phase in self.phases if phase.name == name), "ABSENT")


def codebuild_environment(
    source_dir: Path, commit: str, build_number: int = 1, project: str = "audiobook-tts"
) -> dict[str, str]:
    """The variables CodeBuild sets in every build (the ones a buildspec commonly reads)."""
    build_id = f"{project}:{build_number:08d}-0000-4000-8000-000000000000"
    return {
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:us-east-1:000000000000:build/{build_id}",
        "CODEBUILD_BUILD_NUMBER": str(build_number),
        "CODEBUILD_INITIATOR": "audiobook-tts-tests",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        "CODEBUILD_SOURCE_VERSION": commit,
        "CODEBUILD_SRC_DIR": str(source_dir),
        "CODEBUILD_CI": "true",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _run_commands(
    commands: Sequence[str], shell: str, cwd: Path, env: Mapping[str, str], printer: Printer
) -> tuple[str, int]:
    """Run commands one by one in one shell process; ('', 0), or the first failing one."""
    with tempfile.NamedTemporaryFile("r", encoding="utf-8", suffix=".failed") as failed:
        # One shell for the phase, as CodeBuild's 0.2 runner: each command's status is checked
        # and the first non-zero one ends the phase, naming itself in `failed`.
        script = "\n".join(
            f"echo '[Container] Running command '{_quote(command)}\n{command}\n"
            f'status=$?; if [ $status -ne 0 ]; then printf %s {_quote(command)} > "$1"; '
            "exit $status; fi"
            for command in commands
        )
        process = subprocess.Popen(
            [shell, "-c", script, "buildspec", failed.name],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            printer(line.rstrip("\n"))
        code = process.wait()
        failed_command = failed.read().strip()
    return (failed_command or "(the phase's shell)", code) if code else ("", 0)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_buildspec(
    spec: Buildspec,
    source_dir: Path,
    environ: Mapping[str, str],
    printer: Printer,
) -> BuildspecRun:
    """Run the phases as CodeBuild does; the result says which phase failed, if any."""
    env = {**environ, **dict(spec.variables), "CODEBUILD_BUILD_SUCCEEDING": "1"}
    run = BuildspecRun()
    skip_to_end = False
    for phase in spec.phases:
        if skip_to_end:
            run.phases.append(PhaseResult(phase.name, "SKIPPED"))
            continue
        printer(f"[Container] Entering phase {phase.name.upper()}")
        command, code = _run_commands(phase.commands, spec.shell, source_dir, env, printer)
        if phase.finally_commands:
            final_command, final_code = _run_commands(
                phase.finally_commands, spec.shell, source_dir, env, printer
            )
            if not code and final_code:
                command, code = final_command, final_code
        status = "FAILED" if code else "SUCCEEDED"
        run.phases.append(PhaseResult(phase.name, status, command, code))
        printer(f"[Container] Phase complete: {phase.name.upper()} State: {status}")
        if code and phase.on_failure == "ABORT":
            env["CODEBUILD_BUILD_SUCCEEDING"] = "0"
            # A failed build phase still runs post_build; an earlier failure ends the build.
            skip_to_end = phase.name in ("install", "pre_build")
    return run


def run_buildspec_file(
    path: Path, source_dir: Path, environ: Mapping[str, str], printer: Printer
) -> BuildspecRun:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ImageBuildError(f"cannot read {path}: {error.strerror}") from error
    return run_buildspec(parse_buildspec(text), source_dir, environ, printer)
