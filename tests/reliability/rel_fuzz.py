"""Hypothesis settings and strategies of the reliability fuzz targets.

Two profiles (docs/reliability.md):

* ``ci`` (default): a few hundred examples per target, derandomized (the
  same examples every run, so CI is repeatable), no example database;
* ``long``: ``SSCARD_FUZZ_PROFILE=long``, 20,000 examples per target, random
  seeds, hypothesis' example database kept under ``.hypothesis/`` so a
  failure found once is replayed first the next time.

``SSCARD_FUZZ_EXAMPLES=N`` overrides the count of either profile.  Targets use
``@FUZZ`` (or ``fuzz(scale)`` for costlier ones: the count times ``scale``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("SSCARD_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"SSCARD_FUZZ_PROFILE must be 'ci' or 'long', not {PROFILE!r}")

DEFAULT_EXAMPLES = {"ci": 300, "long": 20_000}
EXAMPLES = int(os.environ.get("SSCARD_FUZZ_EXAMPLES", DEFAULT_EXAMPLES[PROFILE]))

settings.register_profile(
    "sscard-reliability-ci",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "sscard-reliability-long",
    max_examples=EXAMPLES,
    deadline=None,
    database=DirectoryBasedExampleDatabase(".hypothesis/sscard-reliability"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def fuzz(scale: float = 1.0) -> settings:
    """The settings of a target: the profile's example count times ``scale``."""
    parent = settings.get_profile(f"sscard-reliability-{PROFILE}")
    return settings(parent, max_examples=max(10, int(EXAMPLES * scale)))


FUZZ = fuzz()

byte = st.integers(0, 255)
blobs = st.binary(max_size=600)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A value of ``base`` with up to three byte-level mutations: a byte
    replaced, a bit flipped, a cut, bytes inserted or appended, a length byte
    bumped."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "flip", "cut", "insert", "append", "bump"]))
        if op == "set" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(byte)
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=8))
        elif op == "bump" and len(data) > 4:
            data[4] = (data[4] + draw(st.sampled_from([-1, 1, 2, 0x80]))) & 0xFF
    return bytes(data)
