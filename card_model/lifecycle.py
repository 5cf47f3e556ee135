"""Life-cycle states of the social security application (docs/card-os.md §5)."""

from __future__ import annotations

from enum import IntEnum

from card_model._data import load_data

__all__ = ["LifeCycle"]


class LifeCycle(IntEnum):
    """GET DATA DF01 values; texts in ``card_model/data/life_cycle.toml``."""

    BLANK = 0x00
    PERSONALISED = 0x01
    ACTIVE = 0x02
    TEMPORARILY_BLOCKED = 0x03
    PERMANENTLY_BLOCKED = 0x04
    CARD_BLOCKED = 0x05

    @property
    def label(self) -> str:
        """Stable identifier (``active``, ``temporarily_blocked`` ...)."""
        return str(load_data("life_cycle.toml")["state"][f"{self.value:02d}"]["name"])

    @property
    def text(self) -> str:
        return str(load_data("life_cycle.toml")["state"][f"{self.value:02d}"]["zh"])

    @property
    def text_en(self) -> str:
        return str(load_data("life_cycle.toml")["state"][f"{self.value:02d}"]["en"])

    @classmethod
    def from_label(cls, label: str) -> LifeCycle:
        for state in cls:
            if state.label == label:
                return state
        raise KeyError(label)
