"""`inv bench`: the build scenarios, measured for this build and the naive baseline.

Everything runs on a sandbox engine (wiped at the start) against a scratch copy of the
repository, so that "cold" is really cold, and neither your engine's cache nor your work
tree is touched. Each scenario is run for ours and the baseline in alternation.
"""

from __future__ import annotations

import json
import platform
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from imagebuild import sandbox as sandbox_module
from imagebuild.build import build, copy_tree
from imagebuild.config import Settings
from imagebuild.engine import Engine
from imagebuild.errors import UsageError
from imagebuild.output import Printer
from imagebuild.plan import BuildRequest
from imagebuild.progress import utc_now
from imagebuild.report import BuildReport

SCENARIOS = ("cold", "no-change", "app-change", "deps-change", "base-change", "fresh-runner")
# What the seed projects promised, as guesses; the table puts the measurement beside them.
SEED_GUESSES = {
    "cold": "~25 min",
    "no-change": "5-8 min",
    "app-change": "8-12 min",
    "deps-change": "15-20 min",
    "base-change": "~25 min",
    "fresh-runner": "(not given)",
}
TARGET_SECONDS = {"no-change": 5.0, "app-change": 20.0, "fresh-runner": 60.0}
TARGET_RATIO_APP_CHANGE = 10.0
TARGET_SIZE_RATIO = 0.6
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


@dataclass(frozen=True)
class Run:
    scenario: str
    variant: str
    wall_seconds: float
    steps_cached: int
    steps_total: int
    downloaded_bytes: int
    log_path: str
    rebuilt: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    variant: str
    runs: tuple[Run, ...]

    @property
    def seconds(self) -> list[float]:
        return [run.wall_seconds for run in self.runs]

    @property
    def median(self) -> float:
        return float(statistics.median(self.seconds))

    @property
    def cached(self) -> str:
        last = self.runs[-1]
        return f"{last.steps_cached}/{last.steps_total}"


@dataclass(frozen=True)
class BenchResult:
    started_at: str
    machine: dict[str, str]
    runs_per_scenario: int
    results: tuple[ScenarioResult, ...]
    image_sizes: dict[str, int] = field(default_factory=dict)

    def result(self, scenario: str, variant: str) -> ScenarioResult | None:
        for item in self.results:
            if item.scenario == scenario and item.variant == variant:
                return item
        return None

    def ratio(self, scenario: str) -> float | None:
        ours, base = self.result(scenario, "ours"), self.result(scenario, "baseline")
        if ours is None or base is None or ours.median <= 0:
            return None
        return base.median / ours.median

    def verdicts(self) -> list[str]:
        """Each target, met or missed; printed, never asserted."""
        lines: list[str] = []
        for scenario, limit in TARGET_SECONDS.items():
            ours = self.result(scenario, "ours")
            if ours is not None:
                state = "met" if ours.median <= limit else "MISSED"
                lines.append(f"{scenario} <= {limit:.0f} s: {state} ({ours.median:.1f} s)")
        ratio = self.ratio("app-change")
        if ratio is not None:
            state = "met" if ratio >= TARGET_RATIO_APP_CHANGE else "MISSED"
            lines.append(
                f"baseline / ours on app-change >= {TARGET_RATIO_APP_CHANGE:.0f}: "
                f"{state} ({ratio:.1f})"
            )
        ours_size, base_size = self.image_sizes.get("ours"), self.image_sizes.get("baseline")
        if ours_size and base_size:
            size_ratio = ours_size / base_size
            state = "met" if size_ratio <= TARGET_SIZE_RATIO else "MISSED"
            lines.append(
                f"runtime image <= {TARGET_SIZE_RATIO} x baseline: {state} "
                f"({size_ratio:.2f}: {ours_size / 1e6:.0f} MB vs {base_size / 1e6:.0f} MB)"
            )
        return lines

    def markdown(self) -> str:
        lines = [
            f"Measured {self.started_at} on {self.machine.get('summary', 'this machine')}; "
            f"median of {self.runs_per_scenario} run(s) (min-max), steps cached of total.",
            "",
            "| scenario | seed's guess | ours | baseline | baseline ÷ ours | ours cached | "
            "baseline cached | pip downloaded (ours / baseline) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for scenario in SCENARIOS:
            ours, base = self.result(scenario, "ours"), self.result(scenario, "baseline")
            if ours is None and base is None:
                continue
            ratio = self.ratio(scenario)
            lines.append(
                f"| {scenario} | {SEED_GUESSES[scenario]} | {_cell(ours)} | {_cell(base)} | "
                f"{f'{ratio:.1f}x' if ratio else '-'} | {ours.cached if ours else '-'} | "
                f"{base.cached if base else '-'} | {_downloaded(ours)} / {_downloaded(base)} |"
            )
        if self.image_sizes:
            lines += ["", "| image | compressed size |", "| --- | --- |"]
            for name, size in self.image_sizes.items():
                lines.append(f"| {name} | {size / 1e6:.0f} MB |")
        lines += ["", "Targets:", ""] + [f"- {line}" for line in self.verdicts()]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["verdicts"] = self.verdicts()
        return json.dumps(data, indent=2, sort_keys=True)


def _downloaded(result: ScenarioResult | None) -> str:
    if result is None:
        return "-"
    return f"{result.runs[-1].downloaded_bytes / 1e6:.0f} MB"


def _cell(result: ScenarioResult | None) -> str:
    if result is None:
        return "-"
    if len(result.runs) == 1:
        return f"{result.median:.1f} s"
    return f"{result.median:.1f} s ({min(result.seconds):.1f}-{max(result.seconds):.1f})"


def parse_scenarios(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip()) if text else SCENARIOS
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise UsageError(
            f"unknown scenario(s) {', '.join(unknown)}; scenarios: {', '.join(SCENARIOS)}"
        )
    # Always in the canonical order: each scenario starts from the state the previous left.
    return tuple(name for name in SCENARIOS if name in chosen)


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
            tags=(f"{self.image(variant)}:bench",), cache_mode=cache_mode, progress="quiet"
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
        engine = Engine.of(self.settings)
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

    def image_sizes(self) -> dict[str, int]:
        engine = Engine.of(self.settings)
        sizes: dict[str, int] = {}
        for variant in VARIANTS:
            sizes[variant.name] = engine.image_size(f"{self.image(variant)}:bench")
        return sizes


def machine_facts(settings: Settings) -> dict[str, str]:
    import os

    memory = ""
    try:
        with Path("/proc/meminfo").open() as handle:
            kilobytes = int(handle.readline().split()[1])
            memory = f"{kilobytes / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    facts = Engine.of(settings).facts()
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
) -> BenchResult:
    if runs < 1:
        raise UsageError("-n must be at least 1")
    box = sandbox_module.sandbox(settings, engine_name)
    printer(
        f"bench: a fresh sandbox engine ({box.root}), scenarios {', '.join(scenarios)}, "
        f"{runs} run(s) each; this takes minutes"
    )
    sandbox_module.start(box, printer, fresh=True)
    bench_settings = box.settings(settings)
    started = utc_now()
    workspace = out_dir / "workspace"
    copy_tree(settings.root, workspace)
    bench = Bench(bench_settings, workspace, out_dir / "logs", printer, runs, settings.base_image)
    try:
        if scenarios and scenarios[0] != "cold":
            printer("warming the sandbox builder (unmeasured) ...")
            for variant in VARIANTS:
                bench.build(variant)
        for name in scenarios:
            bench.scenario(name)
        for variant in VARIANTS:
            bench.build(variant)
        sizes = bench.image_sizes()
        result = BenchResult(
            started_at=started.isoformat(timespec="seconds"),
            machine=machine_facts(bench_settings),
            runs_per_scenario=runs,
            results=tuple(
                ScenarioResult(scenario, variant, tuple(items))
                for (scenario, variant), items in bench.results.items()
            ),
            image_sizes=sizes,
        )
    finally:
        if not keep_engine:
            sandbox_module.stop(box, printer)
    write_outputs(result, out_dir)
    printer("")
    printer(result.markdown())
    printer(f"bench report: {out_dir}/bench.md, bench.json, bench.png")
    return result


def write_outputs(result: BenchResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(result.markdown(), encoding="utf-8")
    (out_dir / "bench.json").write_text(result.to_json(), encoding="utf-8")
    chart(result, out_dir / "bench.png")


def chart(result: BenchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = [s for s in SCENARIOS if result.result(s, "ours") or result.result(s, "baseline")]
    ours = [(result.result(s, "ours") or _empty(s)).median for s in scenarios]
    base = [(result.result(s, "baseline") or _empty(s)).median for s in scenarios]
    positions = range(len(scenarios))
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=110)
    axes.bar([p - 0.2 for p in positions], ours, width=0.4, label="ours", color="#2b8a3e")
    axes.bar([p + 0.2 for p in positions], base, width=0.4, label="naive baseline", color="#c92a2a")
    for position, seconds in zip(positions, ours, strict=True):
        axes.annotate(
            f"{seconds:.1f}s", (position - 0.2, seconds), ha="center", va="bottom", fontsize=8
        )
    for position, seconds in zip(positions, base, strict=True):
        axes.annotate(
            f"{seconds:.0f}s", (position + 0.2, seconds), ha="center", va="bottom", fontsize=8
        )
    axes.set_xticks(list(positions), scenarios)
    axes.set_ylabel("wall time, seconds (log scale)")
    axes.set_yscale("log")
    axes.set_title(f"Image build time by scenario — {result.machine.get('summary', '')}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _empty(scenario: str) -> ScenarioResult:
    return ScenarioResult(scenario, "", (Run(scenario, "", 0.0, 0, 0, 0, ""),))


def bench_dir(settings: Settings) -> Path:
    return settings.log_path / "bench" / utc_now().strftime("%Y%m%dT%H%M%SZ")


def publish(result_dir: Path, root: Path, printer: Printer) -> None:
    """Copy a bench report's table and chart into the README (between its bench markers)."""
    readme = root / "README.md"
    docs = root / "docs" / "bench"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "latest.png").write_bytes((result_dir / "bench.png").read_bytes())
    (docs / "latest.json").write_text((result_dir / "bench.json").read_text())
    table = (result_dir / "bench.md").read_text(encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        raise UsageError(f"README.md has no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    block = f"{start}\n{table}\n![build time by scenario](docs/bench/latest.png)\n{end}"
    readme.write_text(head + block + tail, encoding="utf-8")
    printer(f"README.md and docs/bench/ updated from {result_dir}")
