"""The README's table of every setting, read from the code so that it cannot go stale.

`INVOKE_IMAGEBUILD_*`: the fields of `Settings` (plan/config.py), each with its invoke.yaml
value and the comment above it (in plan/config.py, else in invoke.yaml). `AUDIOBOOK_TTS_*`:
the variables src/audiobook_tts/config.py reads, found with `ast` (nothing of the service is
imported), each with the `ServiceSettings` field it fills, that field's default and the
comment above it. `inv settings-table` writes the table between the README's markers; a unit
test fails while the README's table differs from the one the code gives.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from imagebuild.errors import UsageError
from imagebuild.output import Printer
from imagebuild.plan import config as build_config
from imagebuild.plan.config import Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
SERVICE_CONFIG = Path("src/audiobook_tts/config.py")
_SERVICE_VARIABLE = re.compile(r"^AUDIOBOOK_TTS_[A-Z0-9_]+$")
# What the service's code does not say in a comment of its own (the service's config.py
# holds no comment above these fields). Only words: which settings there are, and their
# defaults, come from the code; an entry for a setting the code no longer reads fails a test.
SERVICE_MEANINGS = {
    "AUDIOBOOK_TTS_HOST": "The address the HTTP server listens on (the image sets 0.0.0.0).",
    "AUDIOBOOK_TTS_PORT": "The port the HTTP server listens on.",
    "AUDIOBOOK_TTS_MAX_INPUT": "The longest `input` of one speech request, in characters (400 beyond).",
    "AUDIOBOOK_TTS_MAX_CONCURRENCY": "Syntheses that run at once (more wait in the queue).",
    "AUDIOBOOK_TTS_MAX_BODY_BYTES": "The largest request body read (413 beyond, before it is read).",
    "AUDIOBOOK_TTS_CSM_VOICES": "A directory of reference clips: the csm engine's voices.",
    "AUDIOBOOK_TTS_DEVICE": "The csm engine's torch device (empty: cuda when torch sees one, else cpu).",
    "AUDIOBOOK_TTS_MAX_BOOK_BYTES": "The largest book accepted, in bytes.",
    "AUDIOBOOK_TTS_IMAGE_ENGINES": "Set by the image's build: the engines it holds (what "
    "AUDIOBOOK_TTS_ENGINES defaults to).",
}


@dataclass(frozen=True)
class SettingLine:
    """One line of the table."""

    name: str
    default: str
    meaning: str


def comments_above(lines: list[str], number: int) -> str:
    """The `#` comment lines right above line `number` (1-based), joined into one sentence."""
    found: list[str] = []
    index = number - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        found.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return " ".join(found)


def _class_fields(tree: ast.Module, lines: list[str], name: str) -> dict[str, tuple[Any, str]]:
    """A dataclass's fields: each one's default (a literal or simple arithmetic of literals;
    None otherwise) and the comment above it."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {
                item.target.id: (_value(item.value), comments_above(lines, item.lineno))
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
    raise UsageError(f"no class {name} in the service's config")


def _value(node: ast.expr | None) -> Any:
    if node is None:
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add):
        left, right = _value(node.left), _value(node.right)
        if isinstance(left, int) and isinstance(right, int):
            return left * right if isinstance(node.op, ast.Mult) else left + right
        return None
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _variables(node: ast.AST) -> list[str]:
    return [
        item.value
        for item in ast.walk(node)
        if isinstance(item, ast.Constant)
        and isinstance(item.value, str)
        and _SERVICE_VARIABLE.match(item.value)
    ]


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        value = ",".join(str(item) for item in value)
    if isinstance(value, bool):
        value = str(value).lower()
    text = str(value)
    return f"`{text}`" if text else "(empty)"


def _default_of(call: ast.AST, variable: str, field_default: Any) -> str:
    """The default the code passes beside `variable` (`env.get(NAME, DEFAULT)`,
    `number(NAME, DEFAULT)`): the field's own default, a literal, or the call that makes it."""
    for node in ast.walk(call):
        if not isinstance(node, ast.Call) or len(node.args) < 2:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and first.value == variable:
            default = node.args[1]
            if isinstance(default, ast.Attribute):
                return _shown(field_default)
            literal = _value(default)
            return _shown(literal) if literal is not None else f"`{ast.unparse(default)}`"
    return _shown(field_default)


def service_settings(root: Path) -> list[SettingLine]:
    """Every AUDIOBOOK_TTS_* variable the service's config.py reads, in the order it reads
    them: the ones that fill a field of `ServiceSettings` with that field's default and
    comment, the others with the meaning given here."""
    source = (root / SERVICE_CONFIG).read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    settings_fields = _class_fields(tree, lines, "ServiceSettings")
    found: dict[str, SettingLine] = {}
    for call in _constructor_calls(tree):
        assignments = _assignments(call.function)
        for keyword in call.call.keywords:
            if keyword.arg not in settings_fields:
                continue
            value: ast.AST = keyword.value
            if isinstance(value, ast.Name) and value.id in assignments:
                value = assignments[value.id]
            default, comment = settings_fields[keyword.arg]
            for variable in _variables(value):
                meaning = comment or SERVICE_MEANINGS.get(variable, "")
                found.setdefault(
                    variable, SettingLine(variable, _default_of(value, variable, default), meaning)
                )
    for variable in _variables(tree):
        if variable not in found:
            found[variable] = SettingLine(variable, "(empty)", SERVICE_MEANINGS.get(variable, ""))
    return list(found.values())


@dataclass(frozen=True)
class _Construction:
    function: ast.FunctionDef
    call: ast.Call


def _constructor_calls(tree: ast.Module) -> Iterator[_Construction]:
    """`cls(...)` / `ServiceSettings(...)` calls with keywords, in the methods and functions
    that make the settings from the environment."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("cls", "ServiceSettings")
                and node.keywords
            ):
                yield _Construction(function, node)


def _assignments(function: ast.FunctionDef) -> dict[str, ast.expr]:
    return {
        target.id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def invoke_settings(root: Path) -> list[SettingLine]:
    """Every field of `Settings` as its INVOKE_IMAGEBUILD_* variable, with the value
    invoke.yaml gives it (else the field's default) and the comment above it."""
    yaml_text = (root / "invoke.yaml").read_text(encoding="utf-8")
    yaml_lines = yaml_text.splitlines()
    values = (yaml.safe_load(yaml_text) or {}).get("imagebuild", {})
    config_lines = Path(build_config.__file__).read_text(encoding="utf-8").splitlines()
    config_tree = ast.parse("\n".join(config_lines))
    comments = {
        name: comment
        for name, (_, comment) in _class_fields(config_tree, config_lines, "Settings").items()
    }
    result = []
    for field in fields(Settings):
        if field.name == "root":
            continue
        default = values.get(field.name, None if field.default is MISSING else field.default)
        key_line = next(
            (n for n, line in enumerate(yaml_lines, 1) if line.startswith(f"  {field.name}:")), 0
        )
        meaning = comments.get(field.name) or (
            comments_above(yaml_lines, key_line) if key_line else ""
        )
        result.append(
            SettingLine(f"INVOKE_IMAGEBUILD_{field.name.upper()}", _shown(default), meaning)
        )
    return result


def settings_table(root: Path) -> str:
    """The table, in Markdown, as the README holds it between its markers."""
    rows = ["| setting | default | what it sets |", "| --- | --- | --- |"]
    for line in [*invoke_settings(root), *service_settings(root)]:
        meaning = line.meaning.replace("|", "\\|") or "—"
        default = line.default.replace("|", "\\|")
        rows.append(f"| `{line.name}` | {default} | {meaning} |")
    return "\n".join(rows)


def table_in(readme_text: str) -> str | None:
    """The table between the README's markers; None when it has none."""
    if START not in readme_text or END not in readme_text:
        return None
    return readme_text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def write_settings_table(root: Path, printer: Printer) -> None:
    """`inv settings-table`: the README's table made again from the code."""
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    if table_in(text) is None:
        raise UsageError(f"README.md has no {START} ... {END} block to replace")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    table = settings_table(root)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")
    printer(f"README.md: the table of settings written ({table.count(chr(10)) - 1} settings)")
