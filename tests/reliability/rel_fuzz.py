"""Hypothesis settings and strategies of the reliability fuzz targets.

Two profiles (docs/reliability.md):

* ``ci`` (default): 150 examples per target, derandomized (the
  same examples every run, so CI is repeatable), no example database;
* ``long``: ``SSCARD_FUZZ_PROFILE=long``, 20,000 examples per target, random
  seeds, hypothesis' example database kept under ``.hypothesis/`` so a
  failure found once is replayed first the next time.

``SSCARD_FUZZ_EXAMPLES=N`` overrides the count of either profile.  Targets use
``@FUZZ`` (or ``fuzz(scale)`` for costlier ones: the count times ``scale``).
"""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from terminal.service.national_protocol import function_specs

PROFILE = os.environ.get("SSCARD_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise RuntimeError(f"SSCARD_FUZZ_PROFILE must be 'ci' or 'long', not {PROFILE!r}")

DEFAULT_EXAMPLES = {"ci": 150, "long": 20_000}
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


# -- the national interface's messages ------------------------------------------------------
# JSON objects naming a function (known or not) with arguments of every type, raw
# text, bytes, deeply nested arrays; optionally mutated at the byte level.

NAMES = sorted(function_specs())
number_like = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(alphabet="0123456789-+ ²١٣", max_size=8),
    st.integers(0, 5000).map(lambda n: "9" * n),
    st.sampled_from(["1", " 3 ", "--1", "-0", "1e3", "0x1", "٣", "²"]),
)
text_like = st.one_of(st.text(max_size=80), st.integers(), st.lists(st.integers(), max_size=2), st.none())


@st.composite
def national_messages(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["object", "raw", "nested", "bytes"]))
    if kind == "raw":
        return draw(st.text(max_size=200))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "nested":
        depth = draw(st.integers(1, 20000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        return opener * depth
    name = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=20), st.integers()))
    doc: dict[str, object] = {"function": name}
    spec = function_specs().get(name) if isinstance(name, str) else None
    for arg in spec.args if spec is not None else ():
        if draw(st.booleans()) or draw(st.booleans()):
            doc[arg] = draw(number_like if arg in ("iType", "iAuthType") else text_like)
    if draw(st.booleans()):
        doc["id"] = draw(text_like)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        return draw(mutated(st.just(text.encode("utf-8")))).decode("utf-8", "replace")
    return text
