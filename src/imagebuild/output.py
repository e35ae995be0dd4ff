"""What the tooling prints for people: the printer every module is handed, and how names
and sizes are shortened for a terminal line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Every function that talks to a person takes one: `print` in tasks, a list's append in tests.
Printer = Callable[[str], None]


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def human_bytes(count: int | None, compact: bool = False) -> str:
    """1234567 -> "1.2 MB" (decimal units); `compact` drops the space: "1.2MB"."""
    if not count:
        return "0B" if compact else "0 B"
    gap = "" if compact else " "
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{count}{gap}B" if unit == "B" else f"{value:.1f}{gap}{unit}"
        value /= 1000
    return f"{count}{gap}B"


@dataclass(frozen=True)
class Check:
    """One line of `inv doctor`: ok, warn (works, at a cost) or FAIL, and the fix."""

    name: str
    state: str  # "ok", "warn" or "FAIL"
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        head = f"{self.state:<5} {self.name}: {self.detail}"
        return [head, f"      fix: {self.fix}"] if self.fix and self.state != "ok" else [head]
