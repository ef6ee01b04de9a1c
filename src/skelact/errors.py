"""Errors that speak to users.

Every problem a user can cause (a bad file, a wrong layout, a config typo, a missing dataset) is raised as a
:class:`SkelactError` naming the file, the field and what was expected. The CLI prints it as one line and exits
non-zero; anything else escaping is a bug in skelact.
"""

from __future__ import annotations

from os import PathLike


class SkelactError(Exception):
    """A user-facing error: ``<path>: <field>: <message>`` on one line."""

    def __init__(self, message: str, path: str | PathLike | None = None, field: str | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        parts.append(self.message)
        return ": ".join(parts)


class DataError(SkelactError):
    """A source file (or a sample inside it) is unreadable, malformed or inconsistent."""


class LayoutError(SkelactError):
    """A skeleton layout is invalid or does not match the data."""


class StoreError(SkelactError):
    """A dataset store is missing, incomplete or corrupt."""


class ConfigError(SkelactError):
    """A configuration key is unknown or a value has the wrong type."""
