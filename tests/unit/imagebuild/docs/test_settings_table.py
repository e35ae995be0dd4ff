"""The README's table of settings is the one the code gives: a setting added to invoke.yaml's
`Settings` or read by the service's config.py without its line in the README fails here."""

from __future__ import annotations

import re
import shutil
from dataclasses import fields
from pathlib import Path

from imagebuild.docs.settings_table import (
    SERVICE_CONFIG,
    SERVICE_MEANINGS,
    invoke_settings,
    service_settings,
    settings_table,
    table_in,
)
from imagebuild.plan.config import Settings

ROOT = Path(__file__).resolve().parents[4]


def test_the_readmes_table_is_the_one_the_code_gives() -> None:
    written = table_in((ROOT / "README.md").read_text(encoding="utf-8"))
    assert written is not None, "README.md has no <!-- settings:start --> block"
    assert written == settings_table(ROOT), "the settings changed: run `inv settings-table`"


def test_every_variable_the_service_and_its_image_name_is_in_the_table() -> None:
    named = {
        match
        for path in [*(ROOT / "src/audiobook_tts").rglob("*.py"), *(ROOT / "docker").rglob("*")]
        if path.is_file()
        for match in re.findall(
            r"\bAUDIOBOOK_TTS_[A-Z0-9_]*[A-Z0-9]\b", path.read_text("utf-8", errors="replace")
        )
    }
    listed = {line.name for line in service_settings(ROOT)}
    assert named - listed == set()


def test_every_build_setting_is_a_line_with_a_meaning() -> None:
    lines = invoke_settings(ROOT)
    assert [line.name for line in lines] == [
        f"INVOKE_IMAGEBUILD_{field.name.upper()}"
        for field in fields(Settings)
        if field.name != "root"
    ]
    assert [line.name for line in lines if not line.meaning] == []
    assert all(line.default for line in lines)


def test_a_setting_added_to_the_service_gets_a_line_with_its_default_and_comment(
    tmp_path: Path,
) -> None:
    config = tmp_path / SERVICE_CONFIG
    config.parent.mkdir(parents=True)
    shutil.copy(ROOT / SERVICE_CONFIG, config)
    text = config.read_text(encoding="utf-8")
    text = text.replace(
        "    @classmethod\n    def from_environ(",
        "    # Seconds a chapter may take.\n    chapter_seconds: int = 60 * 10\n\n"
        "    @classmethod\n    def from_environ(",
        1,
    )
    text = text.replace(
        "        return cls(\n",
        '        return cls(\n            chapter_seconds=number("AUDIOBOOK_TTS_CHAPTER_SECONDS",'
        " defaults.chapter_seconds),\n",
        1,
    )
    config.write_text(text, encoding="utf-8")
    added = {line.name: line for line in service_settings(tmp_path)}[
        "AUDIOBOOK_TTS_CHAPTER_SECONDS"
    ]
    assert (added.default, added.meaning) == ("`600`", "Seconds a chapter may take.")
    assert added.name not in {line.name for line in service_settings(ROOT)}


def test_every_meaning_given_outside_the_code_is_for_a_setting_the_code_reads() -> None:
    assert set(SERVICE_MEANINGS) - {line.name for line in service_settings(ROOT)} == set()
    assert [line.name for line in service_settings(ROOT) if not line.meaning] == []
