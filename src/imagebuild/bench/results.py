"""What `inv bench` measures and reports: the scenarios and their targets, the results, the
table, the chart, and publishing them in the README. Pure data and files; the runner that
makes the builds is `runner.py`."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imagebuild.errors import UsageError
from imagebuild.output import Printer

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
TARGET_SIZE_RATIO = 0.6


@dataclass(frozen=True)
class ImageVariant:
    """Which image the bench builds: the torch variant and the engines it holds."""

    name: str
    torch_variant: str
    engines: str
    # baseline / ours at least this, per scenario (every scenario: at least as fast as naive).
    ratios: tuple[tuple[str, float], ...]
    # ours at most this many seconds.
    seconds: tuple[tuple[str, float], ...]
    # Compressed size at most this many bytes (a reference image's size times a ratio).
    size_limit: tuple[str, int] | None = None
    # A target platform other than the host's (built under QEMU emulation), or the host's.
    platform: str = ""


IMAGE_VARIANTS = {
    "cpu": ImageVariant(
        "cpu",
        "cpu",
        "espeak,piper",
        ratios=(*((s, 1.0) for s in SCENARIOS), ("deps-change", 8.0), ("app-change", 10.0)),
        seconds=(*TARGET_SECONDS.items(), ("base-change", 15.0)),
    ),
    "cuda-csm": ImageVariant(
        "cuda-csm",
        "cuda",
        "espeak,csm",
        ratios=(
            *((s, 1.0) for s in SCENARIOS),
            ("base-change", 8.0),
            ("deps-change", 8.0),
            ("app-change", 50.0),
        ),
        seconds=tuple(TARGET_SECONDS.items()),
        # Kokoro-FastAPI's GPU image, 4.68 GB compressed: ours at most 0.6 of it.
        size_limit=("0.6 x Kokoro-FastAPI's GPU image (4.68 GB)", int(0.6 * 4.68e9)),
    ),
    # The CPU espeak image for linux/arm64, built here under QEMU: every RUN is emulated, so
    # its seconds say how layout and caching fare when each step is slow, not how fast an
    # arm64 host builds. Only "at least as fast as naive" is asked of it.
    "arm64": ImageVariant(
        "arm64",
        "cpu",
        "espeak",
        ratios=tuple((s, 1.0) for s in SCENARIOS),
        seconds=(),
        platform="linux/arm64",
    ),
}


def image_variant(name: str) -> ImageVariant:
    if name not in IMAGE_VARIANTS:
        raise UsageError(f"--variant {name!r} is not one of {', '.join(IMAGE_VARIANTS)}")
    return IMAGE_VARIANTS[name]


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
    # Compressed (what a registry stores and a runner pulls), per build: ours, baseline.
    image_sizes: dict[str, int] = field(default_factory=dict)
    image_variant: str = "cpu"
    # Unpacked (what a container's file system holds), per build.
    unpacked_sizes: dict[str, int] = field(default_factory=dict)
    installer: str = "pip"
    compression: str = "gzip"

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
        """Each target of this image variant, met or missed; printed, never asserted."""
        variant = IMAGE_VARIANTS.get(self.image_variant, IMAGE_VARIANTS["cpu"])
        lines: list[str] = []
        for scenario, limit in variant.seconds:
            ours = self.result(scenario, "ours")
            if ours is not None:
                state = "met" if ours.median <= limit else "MISSED"
                lines.append(f"{scenario} <= {limit:.0f} s: {state} ({ours.median:.1f} s)")
        strictest: dict[str, float] = {}
        for scenario, ratio_limit in variant.ratios:
            strictest[scenario] = max(ratio_limit, strictest.get(scenario, 0.0))
        for scenario in SCENARIOS:
            ratio = self.ratio(scenario)
            if ratio is None or scenario not in strictest:
                continue
            limit = strictest[scenario]
            state = "met" if ratio >= limit else "MISSED"
            lines.append(f"{scenario}: baseline / ours >= {limit:g}: {state} ({ratio:.1f})")
        ours_size, base_size = self.image_sizes.get("ours"), self.image_sizes.get("baseline")
        if ours_size and base_size:
            size_ratio = ours_size / base_size
            state = "met" if size_ratio <= TARGET_SIZE_RATIO else "MISSED"
            lines.append(
                f"runtime image <= {TARGET_SIZE_RATIO} x baseline: {state} "
                f"({size_ratio:.2f}: {ours_size / 1e6:.0f} MB vs {base_size / 1e6:.0f} MB)"
            )
        if ours_size and variant.size_limit is not None:
            what, limit_bytes = variant.size_limit
            state = "met" if ours_size <= limit_bytes else "MISSED"
            lines.append(
                f"compressed image <= {what}: {state} ({ours_size / 1e9:.2f} GB vs "
                f"{limit_bytes / 1e9:.2f} GB)"
            )
        return lines

    def markdown(self) -> str:
        lines = [
            f"Image variant `{self.image_variant}`, ours installed with {self.installer}, "
            f"{self.compression} layers. "
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
            lines += ["", "| image | compressed | unpacked |", "| --- | --- | --- |"]
            for name, size in self.image_sizes.items():
                unpacked = self.unpacked_sizes.get(name)
                lines.append(
                    f"| {name} | {size / 1e6:.0f} MB | "
                    f"{f'{unpacked / 1e6:.0f} MB' if unpacked else '-'} |"
                )
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
    axes.set_title(
        f"{result.image_variant} image build time by scenario — {result.machine.get('summary', '')}"
    )
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _empty(scenario: str) -> ScenarioResult:
    return ScenarioResult(scenario, "", (Run(scenario, "", 0.0, 0, 0, 0, ""),))


def publish(result_dir: Path, root: Path, printer: Printer) -> None:
    """Copy a bench report's table and chart into docs/bench.md, between the markers of its
    image variant (`<!-- bench:cpu:start -->`, `<!-- bench:cuda-csm:start -->`)."""
    data = json.loads((result_dir / "bench.json").read_text(encoding="utf-8"))
    variant = str(data.get("image_variant", "cpu"))
    page = root / "docs" / "bench.md"
    docs = root / "docs" / "bench"
    table = (result_dir / "bench.md").read_text(encoding="utf-8")
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    start, end = f"<!-- bench:{variant}:start -->", f"<!-- bench:{variant}:end -->"
    if start not in text or end not in text:
        raise UsageError(f"docs/bench.md has no {start} ... {end} block to replace")
    docs.mkdir(parents=True, exist_ok=True)
    (docs / f"{variant}.png").write_bytes((result_dir / "bench.png").read_bytes())
    (docs / f"{variant}.json").write_text((result_dir / "bench.json").read_text())
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    block = (
        f"{start}\n{table}\n![{variant} image build time by scenario](bench/{variant}.png)\n{end}"
    )
    page.write_text(head + block + tail, encoding="utf-8")
    printer(f"docs/bench.md and docs/bench/{variant}.* updated from {result_dir}")
