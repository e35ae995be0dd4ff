"""Add up the JUnit files of every nox session into one 'N passed, N failed' line."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for name in sys.argv[1:]:
    try:
        root = ET.parse(name).getroot()  # noqa: S314 - our own pytest output
    except (OSError, ET.ParseError):
        continue
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{passed} passed, {failed} failed, {totals['skipped']} skipped")
