"""The object click passes to every command: settings and adapters, built once, lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from crashed.settings import Settings, load_settings
from crashed.wiring import Adapters, build_adapters


@dataclass
class AppContext:
    """Lazily loaded settings and adapters (so ``--help`` never reads configuration)."""

    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @cached_property
    def settings(self) -> Settings:
        return self._settings or load_settings()

    @cached_property
    def adapters(self) -> Adapters:
        return build_adapters(self.settings)
