"""Typed access to the TOML tables of the configuration, with errors that name the file and the key,
and the secrets read from the environment (never shown in a message)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sessions.errors import ConfigError


class Reader:
    """Typed access to one TOML table, with errors that say where."""

    def __init__(self, source: Path, table: Mapping[str, Any], where: str) -> None:
        self.source = source
        self.table = table
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.key(key)}: {problem}")

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing")
            return default
        value = self.table[key]
        # bool is an int in Python; never accept true where a number is meant.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(key, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def sub(self, key: str) -> Reader:
        value = self.get(key, dict, {})
        return Reader(self.source, value, self.key(key))


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "a whole number", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def require_secret(env: Mapping[str, str], name: str, section: Reader, *, prefix: str = "") -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{section.source}: [{section.where}] is enabled but the environment variable {name} is not set"
        )
    if prefix and not value.startswith(prefix):
        # Say what it should look like, never what it is.
        raise ConfigError(
            f"{section.source}: [{section.where}]: {name} does not look right (it should start with {prefix!r})"
        )
    return value
