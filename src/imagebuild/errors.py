"""The one error type the build tooling raises for a person to read."""

from __future__ import annotations

from pathlib import Path


class ImageBuildError(Exception):
    """A failure explained in one line, with the log that holds the details."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log_path = log_path

    def __str__(self) -> str:
        if self.log_path is None:
            return self.message
        return f"{self.message} (log: {self.log_path})"


class UsageError(ImageBuildError):
    """A flag or configuration value that cannot be used as given."""
