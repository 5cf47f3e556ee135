"""The virtual card OS of the social security card (docs/card-os.md, docs/card-model.md)."""

from emulator.card_os.card import CardOS, Interface

__all__ = ["CardOS", "Interface"]
