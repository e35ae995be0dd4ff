"""The one module that talks to Docker, through python-on-whales.

Every other module holds an `Engine` and gets plain values from it; the python-on-whales
client never leaves this module, and neither does a `DockerException`: it becomes an
`ImageBuildError` with one line to read and the log to open.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient, DockerException
from python_on_whales.utils import run

from imagebuild.engine.progress import (
    ProgressTracker,
    RawJsonReader,
    Vertex,
    compact_line,
    plain_line,
    utc_now,
)
from imagebuild.engine.report import (
    BuildReport,
    downloaded_bytes,
    failure_summary,
    is_snapshot_race,
    merge_rerun,
    step_records,
)
from imagebuild.errors import ImageBuildError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings, redact_url
from imagebuild.plan.plan import BuildPlan


def _first_line(error: DockerException) -> str:
    text = (error.stderr or error.stdout or "").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith(("error", "cannot", "failed")):
            return line
    return lines[-1] if lines else f"docker exited with code {error.return_code}"


@contextlib.contextmanager
def docker_errors(action: str, log_path: Path | None = None) -> Iterator[None]:
    """Turn any DockerException inside the block into one clear line."""
    try:
        yield
    except DockerException as error:
        raise ImageBuildError(f"{action}: {_first_line(error)}", log_path) from error


def _answers(docker: DockerClient) -> bool:
    try:
        version = docker.version()
    except (DockerException, OSError):
        # OSError: no docker client binary at all.
        return False
    return version.server is not None


@dataclass(frozen=True)
class EngineFacts:
    server_version: str
    buildx_version: str
    containerd_store: bool
    data_root: str


def _facts(docker: DockerClient) -> EngineFacts:
    with docker_errors("cannot read the engine's facts"):
        info = docker.system.info()
        buildx = docker.buildx.version()
    status = {str(key): str(value) for key, value in (info.driver_status or [])}
    containerd = "containerd" in status.get("driver-type", "") or "containerd" in str(info.driver)
    buildx_version = buildx.get("version", "") if isinstance(buildx, dict) else str(buildx)
    return EngineFacts(
        server_version=str(info.server_version),
        buildx_version=str(buildx_version),
        containerd_store=containerd,
        data_root=str(info.docker_root_dir),
    )


class BuildOutput:
    """Where a build's progress goes: the terminal (by mode) and the plain log file."""

    def __init__(self, plan: BuildPlan, printer: Printer) -> None:
        self.plan = plan
        self.printer = printer
        plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = plan.log_path.open("w", encoding="utf-8")
        self.raw = plan.raw_log_path.open("w", encoding="utf-8")
        self.log.write(f"# {plan.describe()}\n")
        self.tracker = ProgressTracker(on_event=self._on_event)
        self.reader = RawJsonReader()

    def _on_event(self, kind: str, vertex: Vertex, detail: str) -> None:
        line = plain_line(kind, vertex, detail)
        if line is not None:
            self.log.write(line + "\n")
        shown: str | None = None
        if self.plan.progress == "plain":
            shown = line
        elif self.plan.progress in ("tty", "auto"):
            shown = compact_line(kind, vertex, detail)
        if shown is not None:
            self.printer(shown)

    def feed(self, chunk: str) -> None:
        self.raw.write(chunk if chunk.endswith("\n") else chunk + "\n")
        for event in self.reader.feed(chunk):
            self.tracker.handle(event)
            text = getattr(event, "line", None)
            if text is not None:
                self.log.write(text + "\n")
                if self.plan.progress != "quiet":
                    self.printer(text)

    def close(self) -> None:
        for event in self.reader.close():
            self.tracker.handle(event)
        self.log.close()
        self.raw.close()


def _run_build(
    docker: DockerClient,
    plan: BuildPlan,
    printer: Printer,
    inspect_after: bool = True,
) -> BuildReport:
    """Run the plan's buildx call and return its report; once more if the engine's unpack
    race (not the build) failed it, keeping the first attempt's log and what it built."""
    try:
        return _run_build_once(docker, plan, printer, inspect_after)
    except BuildFailed as failed:
        if not is_snapshot_race(failed.report.error):
            raise
        kept = plan.log_path.with_name(plan.log_path.stem + ".attempt1.log")
        if plan.log_path.exists():
            plan.log_path.replace(kept)
        note = (
            "the engine lost a layer snapshot while unpacking the image (a known BuildKit "
            f"race, moby/buildkit#6521), so the build ran again; first attempt's log: {kept}"
        )
        printer(f"warning: {note}")
        first = failed.report
    return merge_rerun(first, _run_build_once(docker, plan, printer, inspect_after), note)


def _run_build_once(
    docker: DockerClient, plan: BuildPlan, printer: Printer, inspect_after: bool
) -> BuildReport:
    started_at = utc_now()
    started = time.monotonic()
    output = BuildOutput(plan, printer)
    error: DockerException | None = None
    try:
        stream = docker.buildx.build(**plan.buildx_kwargs())
        # With stream_logs=True python-on-whales returns the log lines, never an Image.
        assert isinstance(stream, Iterator)
        for chunk in stream:
            output.feed(str(chunk))
    except DockerException as caught:
        error = caught
    finally:
        output.close()
    wall = round(time.monotonic() - started, 3)
    tracker = output.tracker
    steps = step_records(tracker.steps())
    warnings = tuple(
        line.removeprefix("WARNING: ") for line in tracker.texts if line.startswith("WARNING")
    ) + tuple(tracker.warnings)
    # An internal vertex that failed in a build that went on: an unreachable cache source
    # (import) or destination (export with ignore-error). Worth a warning, not a failure.
    warnings += tuple(
        f"{vertex.name}: {vertex.error}"
        for vertex in tracker.failed()
        if not vertex.is_instruction and error is None
    )
    common: dict[str, Any] = {
        "target": plan.target,
        "tags": plan.tags,
        "cache_mode": plan.cache_mode,
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": wall,
        "steps": steps,
        "context_bytes": tracker.context_bytes(),
        "log_path": str(plan.log_path),
        "context_manifest_path": str(plan.context_manifest_path),
        "warnings": warnings,
        "build_args": tuple((key, redact_url(value)) for key, value in plan.build_args),
        "downloaded_bytes": downloaded_bytes(tracker.steps()),
    }
    if error is not None:
        message, tail = failure_summary(tracker)
        if not tracker.vertices and not tracker.texts:
            message = _first_line(error)
        report = BuildReport(succeeded=False, error=message, **common)
        raise BuildFailed(report, tail)
    if plan.oci_archive is not None:
        _load_and_push_archive(docker, plan, printer)
    digest, image_id, size = _image_facts(docker, plan) if inspect_after else (None, None, None)
    return BuildReport(
        succeeded=True, image_digest=digest, image_id=image_id, image_size=size, **common
    )


class BuildFailed(ImageBuildError):
    """A build that ran and failed; carries its report and the failing step's last lines."""

    def __init__(self, report: BuildReport, tail: Sequence[str]) -> None:
        super().__init__(report.error or "the build failed", Path(report.log_path))
        self.report = report
        self.tail = tuple(tail)


def _load_and_push_archive(docker: DockerClient, plan: BuildPlan, printer: Printer) -> None:
    """A reproducible build's OCI archive: into the engine, tagged, and pushed if asked."""
    assert plan.oci_archive is not None
    metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
    digest = str(metadata["containerimage.digest"])
    if plan.load or plan.push:
        with docker_errors("cannot load the reproducible image", plan.log_path):
            docker.image.load(plan.oci_archive, quiet=True)
            for tag in plan.tags:
                docker.image.tag(digest, tag)
        for tag in plan.tags if plan.push else ():
            with docker_errors(f"cannot push {tag}", plan.log_path):
                docker.image.push(tag, quiet=True)
            printer(f"pushed {tag}")
        plan.oci_archive.unlink()
    else:
        printer(f"reproducible image archive: {plan.oci_archive}")


def _image_facts(
    docker: DockerClient, plan: BuildPlan
) -> tuple[str | None, str | None, int | None]:
    digest: str | None = None
    image_id: str | None = None
    if plan.metadata_path.exists():
        with contextlib.suppress(ValueError, OSError):
            metadata = json.loads(plan.metadata_path.read_text(encoding="utf-8"))
            digest = metadata.get("containerimage.digest")
            image_id = metadata.get("containerimage.config.digest")
    size: int | None = None
    if (plan.load or plan.oci_archive is not None) and plan.tags:
        with contextlib.suppress(DockerException):
            image = docker.image.inspect(plan.tags[0])
            size = int(image.size or 0)
            image_id = image_id or str(image.id)
    return digest, image_id, size


# --- images, containers and the builder cache -------------------------------------------


def _remove_images(docker: DockerClient, references: Sequence[str]) -> None:
    present = [ref for ref in references if docker.image.exists(ref)]
    if present:
        with docker_errors("cannot remove images"):
            docker.image.remove(present, force=True)


def _prune_builder(docker: DockerClient) -> None:
    """Throw away the builder's whole local cache (`docker buildx prune -af`)."""
    with docker_errors("cannot prune the builder cache"):
        docker.buildx.prune(all=True)


def _image_size(docker: DockerClient, reference: str) -> int:
    """The image's size as the engine reports it (compressed content, containerd store)."""
    with docker_errors(f"cannot inspect {reference}"):
        return int(docker.image.inspect(reference).size or 0)


def _unpacked_size(docker: DockerClient, reference: str) -> int:
    """Bytes in the image's file system, as a container sees it (`du` on its root)."""
    with docker_errors(f"cannot measure {reference} unpacked"):
        output = docker.run(
            reference, ["-sxb", "/"], entrypoint="du", user="0:0", remove=True, networks=["none"]
        )
    return int(str(output).split()[0])


def _login(docker: DockerClient, server: str, username: str, password: str) -> None:
    # python-on-whales' own login lets docker's output through to the terminal; this is the
    # same call (password on standard input) with the output captured for a one-line error.
    command = [*docker.docker_cmd, "login", "--password-stdin", "--username", username, server]
    with docker_errors(f"cannot log in to {server}"):
        run(command, input=password.encode(), capture_stdout=True, capture_stderr=True)


def _container_builder(
    docker: DockerClient, name: str, image: str, config: Path | None, endpoint: str
) -> str | None:
    """A running docker-container builder `name` on `image`: None when it runs, else why not."""
    with contextlib.suppress(DockerException):
        # --bootstrap fails unless the builder's container runs (or can be started).
        if docker.buildx.inspect(name, bootstrap=True).driver == "docker-container":
            return None
        docker.buildx.remove(name)
    try:
        docker.buildx.create(
            endpoint or None,
            name=name,
            driver="docker-container",
            # Host network: the builder reaches a registry on 127.0.0.1 as the engine does.
            driver_options={"image": image, "network": "host"},
            config=config,
            bootstrap=True,
        )
    except DockerException as error:
        with contextlib.suppress(DockerException):
            docker.buildx.remove(name)
        return _first_line(error).removeprefix("ERROR: ")
    return None


class Engine:
    """One Docker engine (the default one, or a sandbox's socket) and what the tooling does
    with it; the python-on-whales client stays inside."""

    def __init__(self, binary: str = "docker", host: str = "") -> None:
        self.host = host
        self._docker = DockerClient(client_call=[binary], host=host or None)

    @classmethod
    def of(cls, settings: Settings) -> Engine:
        """The engine the settings name."""
        return cls(settings.docker_client, settings.docker_host)

    def answers(self) -> bool:
        """True when a daemon answers (False too when there is no docker client at all)."""
        return _answers(self._docker)

    def facts(self) -> EngineFacts:
        return _facts(self._docker)

    def run_build(
        self, plan: BuildPlan, printer: Printer, inspect_after: bool = True
    ) -> BuildReport:
        return _run_build(self._docker, plan, printer, inspect_after)

    def image_size(self, reference: str) -> int:
        return _image_size(self._docker, reference)

    def unpacked_size(self, reference: str) -> int:
        return _unpacked_size(self._docker, reference)

    def remove_images(self, references: Sequence[str]) -> None:
        _remove_images(self._docker, references)

    def prune_builder(self) -> None:
        _prune_builder(self._docker)

    def login(self, server: str, username: str, password: str) -> None:
        _login(self._docker, server, username, password)

    def container_builder(self, name: str, image: str, config: Path | None) -> str | None:
        """Start (or reuse) a docker-container builder; None when it runs, else the reason."""
        return _container_builder(self._docker, name, image, config, self.host)
