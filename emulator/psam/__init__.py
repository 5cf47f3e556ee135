"""The virtual PSAM (docs/card-os.md §9, docs/card-model.md)."""

from emulator.psam.card import PsamCard

__all__ = ["PsamCard"]
