"""`inv bench`: the runner that makes the scenarios' builds, for this build and the naive
baseline (what it measures, and its report, are in `results.py`).

Everything runs on a sandbox engine (wiped at the start) against a scratch copy of the
repository, so that "cold" is really cold, and neither your engine's cache nor your work
tree is touched. Each scenario is run for ours and the baseline in alternation.
"""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from imagebuild.bench.results import (
    BenchResult,
    ImageVariant,
    Run,
    ScenarioResult,
    image_variant,
    write_outputs,
)
from imagebuild.build.flow import build
from imagebuild.build.scratch_copy import copy_tree
from imagebuild.engine.docker import DockerEngine
from imagebuild.engine.progress import utc_now
from imagebuild.engine.report import BuildReport
from imagebuild.errors import UsageError
from imagebuild.output import Printer
from imagebuild.plan.config import Settings, StatePaths
from imagebuild.plan.request import BuildRequest
from imagebuild.platform import sandbox as sandbox_module
from imagebuild.platform.emulation import ensure_emulation

APP_FILE = "src/audiobook_tts/app.py"
DEPS_FILE = "requirements/service.txt"
DEV_LOCK = "requirements/dev.txt"
ADDED_PACKAGE = "iniconfig"


@dataclass(frozen=True)
class Variant:
    name: str
    dockerfile: str
    target: str
    # Appended to the configured image name: the bench's tags and registry cache refs.
    suffix: str


OURS = Variant("ours", "docker/tts/Dockerfile", "runtime", "bench")
BASELINE = Variant("baseline", "docker/baseline/Dockerfile", "naive", "baseline")
VARIANTS = (OURS, BASELINE)


# --- the scratch workspace and its mutations (pure file edits) ----------------------------


def change_app(root: Path, token: str) -> None:
    """One line of a service source file changed."""
    path = root / APP_FILE
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n# bench change {token}\n", encoding="utf-8"
    )


def change_deps(root: Path, token: str) -> None:
    """One application dependency added to the service lock (with its hashes); torch unchanged."""
    lock = root / DEPS_FILE
    text = lock.read_text(encoding="utf-8")
    if f"\n{ADDED_PACKAGE}==" not in text:
        block = _lock_block((root / DEV_LOCK).read_text(encoding="utf-8"), ADDED_PACKAGE)
        text = text.rstrip("\n") + "\n" + block
    # A new token each run, so that every run is a change the builder has not seen.
    lock.write_text(text.rstrip("\n") + f"\n# bench change {token}\n", encoding="utf-8")


def _lock_block(lock_text: str, package: str) -> str:
    lines = lock_text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{package}=="):
            block = [line]
            for follow in lines[index + 1 :]:
                if not follow.startswith("    --hash"):
                    break
                block.append(follow)
            return "\n".join(block) + "\n"
    raise UsageError(f"{package} is not in {DEV_LOCK}; the deps-change scenario adds it from there")


# --- running -------------------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    workspace: Path
    logs: Path
    printer: Printer
    runs: int
    base_image: str
    results: dict[tuple[str, str], list[Run]] = field(default_factory=dict)
    # How ours installs its layers (pip or uv) and how both builds compress them.
    installer: str = "pip"
    compression: str = "gzip"
    # One target platform (linux/arm64: emulated), or () for the host's.
    platforms: tuple[str, ...] = ()

    def variant_settings(self, variant: Variant) -> Settings:
        return replace(
            self.settings,
            root=self.workspace,
            dockerfile=self.workspace / variant.dockerfile,
            # Outside the workspace: the baseline sends its whole directory as context.
            log_dir=self.logs,
            image=self.image(variant),
            target=variant.target,
            base_image=self.base_image,
        )

    def image(self, variant: Variant) -> str:
        return f"{self.settings.image}-{variant.suffix}"

    def build(self, variant: Variant, cache_mode: str = "inline") -> BuildReport:
        request = BuildRequest(
            tags=(f"{self.image(variant)}:bench",),
            cache_mode=cache_mode,
            progress="quiet",
            compression=self.compression,
            build_args=(f"INSTALL_TOOL={self.installer}",) if variant is OURS else (),
            platforms=self.platforms,
        )
        return build(self.variant_settings(variant), request, lambda _: None, start_platform=False)

    def record(self, scenario: str, variant: Variant, report: BuildReport) -> None:
        run = Run(
            scenario,
            variant.name,
            report.wall_seconds,
            report.steps_cached,
            report.steps_total,
            report.downloaded_bytes,
            report.log_path,
            tuple(report.rebuilt_step_names()),
        )
        runs = self.results.setdefault((scenario, variant.name), [])
        runs.append(run)
        self.printer(
            f"  {scenario:<13} {variant.name:<9} run {len(runs)}/{self.runs}"
            f" {report.wall_seconds:7.1f} s  {report.steps_cached}/{report.steps_total} cached"
        )

    def forget(self) -> None:
        """A fresh runner: the builder's cache (and the bench images) thrown away."""
        engine = DockerEngine.of(self.settings)
        engine.remove_images([f"{self.image(item)}:bench" for item in VARIANTS])
        # A fresh runner has no base image either; and with the containerd store a prune
        # can take snapshots a kept image still points at ("parent snapshot ... not found").
        engine.remove_images(sorted({self.base_image, self.settings.base_image}))
        engine.prune_builder()

    def new_base(self, token: str) -> str:
        """A base image with a new digest: the current one plus a marker file, pushed."""
        reference = f"{self.settings.registry}/audiobook-tts/base:bench-{token}"
        folder = self.workspace.parent / f"base-{token}"
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(
            f"FROM {self.base_image} AS marker\nRUN echo {token} > /etc/bench-base-marker\n"
        )
        settings = replace(
            self.settings,
            root=folder,
            dockerfile=folder / "Dockerfile",
            target="marker",
            log_dir=folder / "build-logs",
        )
        request = BuildRequest(tags=(reference,), push=True, cache_mode="none", progress="quiet")
        build(settings, request, lambda _: None, start_platform=False)
        return reference

    def scenario(self, name: str) -> None:
        self.printer(f"{name}:")
        for number in range(self.runs):
            if name == "cold":
                # One prune for the pair: a prune is engine-wide, so pruning before each
                # build would throw away the other's cache too.
                self.forget()
                for variant in VARIANTS:
                    self.record(name, variant, self.build(variant, cache_mode="none"))
                continue
            if name == "fresh-runner":
                for variant in VARIANTS:
                    self.build(variant, cache_mode="registry")  # the CI run before, exporting
                self.forget()
                for variant in VARIANTS:
                    self.record(name, variant, self.build(variant, cache_mode="registry"))
                continue
            for variant in VARIANTS:
                unique = uuid.uuid4().hex[:12]
                token = f"{variant.name}-{number}-{unique}"
                self.build(variant)  # the state to change (or repeat), unmeasured
                if name == "app-change":
                    change_app(self.workspace, token)
                elif name == "deps-change":
                    change_deps(self.workspace, token)
                elif name == "base-change":
                    self.base_image = self.new_base(unique)
                self.record(name, variant, self.build(variant))

    def image_sizes(self) -> tuple[dict[str, int], dict[str, int]]:
        """Compressed and unpacked bytes of each build's image."""
        engine = DockerEngine.of(self.settings)
        compressed: dict[str, int] = {}
        unpacked: dict[str, int] = {}
        for variant in VARIANTS:
            reference = f"{self.image(variant)}:bench"
            compressed[variant.name] = engine.image_size(reference)
            unpacked[variant.name] = engine.unpacked_size(reference)
        return compressed, unpacked


def machine_facts(settings: Settings) -> dict[str, str]:
    memory = ""
    try:
        with Path("/proc/meminfo").open() as handle:
            kilobytes = int(handle.readline().split()[1])
            memory = f"{kilobytes / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    facts = DockerEngine.of(settings).facts()
    cores = str(os.cpu_count() or "?")
    return {
        "cores": cores,
        "memory": memory,
        "os": platform.platform(),
        "engine": facts.server_version,
        "buildx": facts.buildx_version,
        "summary": f"{cores} cores, {memory}, Docker {facts.server_version}",
    }


def run_bench(
    settings: Settings,
    scenarios: Sequence[str],
    runs: int,
    out_dir: Path,
    printer: Printer,
    keep_engine: bool = False,
    engine_name: str = "bench",
    image: ImageVariant | None = None,
    installer: str = "pip",
    compression: str = "gzip",
    cidr: str = "172.17.203.0/24",
) -> BenchResult:
    """The scenarios on a sandbox engine of their own (`cidr`: an address range no other
    sandbox uses, so a bench and the tests can run at once)."""
    if runs < 1:
        raise UsageError("-n must be at least 1")
    if installer not in ("pip", "uv"):
        raise UsageError(f"--installer {installer!r} is not one of pip, uv")
    image = image or image_variant("cpu")
    box = sandbox_module.sandbox(settings, engine_name, cidr=cidr)
    printer(
        f"bench: the {image.name} image (torch {image.torch_variant}, engines "
        f"{image.engines}) on a fresh sandbox engine ({box.root}), scenarios "
        f"{', '.join(scenarios)}, {runs} run(s) each, installed with {installer}, "
        f"{compression} layers; this takes minutes"
    )
    sandbox_module.start(box, printer, fresh=True)
    bench_settings = replace(
        box.settings(settings), torch_variant=image.torch_variant, engines=image.engines
    )
    started = utc_now()
    workspace = out_dir / "workspace"
    copy_tree(settings.root, workspace)
    bench = Bench(
        bench_settings,
        workspace,
        out_dir / "logs",
        printer,
        runs,
        settings.base_image,
        installer=installer,
        compression=compression,
        platforms=(image.platform,) if image.platform else (),
    )
    if image.platform:
        ensure_emulation([image.platform], StatePaths(settings.state_dir), printer)
    try:
        if scenarios and scenarios[0] != "cold":
            printer("warming the sandbox builder (unmeasured) ...")
            for variant in VARIANTS:
                bench.build(variant)
        for name in scenarios:
            bench.scenario(name)
        for variant in VARIANTS:
            bench.build(variant)
        sizes, unpacked = bench.image_sizes()
        result = BenchResult(
            started_at=started.isoformat(timespec="seconds"),
            machine=machine_facts(bench_settings),
            runs_per_scenario=runs,
            results=tuple(
                ScenarioResult(scenario, variant, tuple(items))
                for (scenario, variant), items in bench.results.items()
            ),
            image_sizes=sizes,
            image_variant=image.name,
            installer=installer,
            compression=compression,
            unpacked_sizes=unpacked,
        )
    finally:
        if not keep_engine:
            sandbox_module.stop(box, printer, wipe=True)
    write_outputs(result, out_dir)
    printer("")
    printer(result.markdown())
    printer(f"bench report: {out_dir}/bench.md, bench.json, bench.png")
    return result


def bench_dir(settings: Settings) -> Path:
    return settings.log_path / "bench" / utc_now().strftime("%Y%m%dT%H%M%SZ")
