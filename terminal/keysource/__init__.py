"""Key sources: the PSAM, a back-end security module (in steps, or the
software module) and a development key file, behind one interface.  Keys
never leave a key source; the terminal handles only cryptograms."""

from __future__ import annotations

from terminal.keysource.base import CardKeys, KeySource, RoleMac
from terminal.keysource.devfile import DevKeyFileKeySource, DevKeysWarning
from terminal.keysource.hsm import HsmKeySource, HsmModule, HsmRequest, key_address, parse_answer
from terminal.keysource.loading import KeyLoadingSource
from terminal.keysource.psam import PsamKeySource
from terminal.keysource.software_hsm import SoftwareHsm
from terminal.keysource.steps import HsmConversation, HsmStep

__all__ = [
    "CardKeys",
    "DevKeyFileKeySource",
    "DevKeysWarning",
    "HsmConversation",
    "HsmKeySource",
    "HsmModule",
    "HsmRequest",
    "HsmStep",
    "KeyLoadingSource",
    "KeySource",
    "PsamKeySource",
    "RoleMac",
    "SoftwareHsm",
    "key_address",
    "parse_answer",
]
