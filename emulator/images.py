"""Card and PSAM image files for the emulator: create, write, open as a card.

``create_card_image`` issues a card from a profile and holder data (the
built-in demo holder of the profile when no holder file is given),
``create_psam_image`` builds a PSAM holding an issuer key set's masters,
``write_image`` commits an image atomically (refusing to overwrite without
``force``), and ``open_card`` turns an image file into the running virtual
card (:class:`emulator.card_os.CardOS` committing every change to the file,
or :class:`emulator.psam.PsamCard`).
"""

from __future__ import annotations

import os
from pathlib import Path

from card_model.demo import demo_ca, demo_holder, demo_key_set, demo_psam_image
from card_model.holder import load_holder_file
from card_model.image import CardImage
from card_model.issuance import issue_card
from card_model.keys import IssuerKeySet
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile
from card_model.psam_image import PsamImage
from card_model.store import CardStore
from emulator.card_os import CardOS, Interface
from emulator.errors import ImageExists
from emulator.psam import PsamCard
from emulator.vpcd import VirtualCard

__all__ = [
    "create_card_image",
    "create_psam_image",
    "open_card",
    "write_image",
]


def _key_set(path: str | os.PathLike[str] | None) -> IssuerKeySet:
    return demo_key_set() if path is None else IssuerKeySet.load(path)


def create_card_image(
    profile_name: str,
    holder_path: str | os.PathLike[str] | None = None,
    *,
    blank: bool = False,
    life_cycle: LifeCycle | None = None,
    key_set_path: str | os.PathLike[str] | None = None,
) -> CardImage:
    """Issue a card image.

    ``holder_path``: a holder TOML file (docs: interfaces.md); None uses the
    demo holder of the profile.  ``blank``: the issuance state (no SM2 key
    pair, no certificates; for issuance flows).  ``life_cycle``: another
    state than the profile's issued state.  ``key_set_path``: an issuer key
    set TOML; None uses the demo key set.  SM2 certificates come from the
    demo CA.
    """
    profile = load_profile(profile_name)
    if holder_path is None:
        holder, card = demo_holder(profile_name)
    else:
        holder, card = load_holder_file(holder_path)
    state = LifeCycle.BLANK if blank else life_cycle
    needs_ca = profile.sm2 and state is not LifeCycle.BLANK
    return issue_card(
        profile,
        holder,
        card,
        _key_set(key_set_path),
        ca=demo_ca() if needs_ca else None,
        life_cycle=state,
    )


def create_psam_image(
    key_set_path: str | os.PathLike[str] | None = None, terminal_number: str | None = None
) -> PsamImage:
    """A PSAM image: the demo PSAM, or the masters of ``key_set_path``."""
    if key_set_path is None and terminal_number is None:
        return demo_psam_image()
    number = terminal_number if terminal_number is not None else demo_psam_image().terminal_number_text
    return PsamImage.from_key_set(_key_set(key_set_path), number)


def write_image(path: str | os.PathLike[str], image: CardImage | PsamImage, *, force: bool = False) -> Path:
    """Commit ``image`` to ``path`` atomically (mode 0600); refuses to replace
    an existing file unless ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise ImageExists(target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    CardStore(target).commit(image)
    return target


def open_card(path: str | os.PathLike[str], *, interface: Interface = "contact") -> VirtualCard:
    """The virtual card of an image file: a card OS persisting every state
    change to the file, or a PSAM (read-only at run time)."""
    store = CardStore(path)
    image = store.load()
    if isinstance(image, PsamImage):
        return PsamCard(image)
    return CardOS(image, store=store, interface=interface)
