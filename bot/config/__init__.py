"""The configuration: ``load_config`` reads the TOML file into a :class:`Config` (see
:mod:`bot.config.load`)."""

from __future__ import annotations

from bot.config.load import Config, load_config

__all__ = ["Config", "load_config"]
