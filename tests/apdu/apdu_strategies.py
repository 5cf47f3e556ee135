"""Hypothesis strategies shared by the apdu tests."""

from __future__ import annotations

from hypothesis import strategies as st

from apdu.command import CommandApdu
from apdu.tlv import Tlv

byte = st.integers(0, 255)


@st.composite
def command_apdus(draw: st.DrawFn) -> CommandApdu:
    extended = draw(st.booleans())
    max_data = 700 if extended else 255
    data = draw(st.binary(max_size=max_data))
    le = draw(st.none() | st.integers(1, 65536 if extended else 256))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


def _tag(constructed: bool) -> st.SearchStrategy[int]:
    flag = 0x20 if constructed else 0x00
    one = st.sampled_from(
        [c for c in range(256) if (c & 0x1F) != 0x1F and (c & 0x20) == flag and c not in (0, 0xFF)]
    )
    first = st.sampled_from(
        [c for c in range(256) if (c & 0x1F) == 0x1F and (c & 0x20) == flag and c != 0xFF]
    )
    two = st.tuples(first, st.integers(0x1F, 0x7F)).map(lambda t: (t[0] << 8) | t[1])
    three = st.tuples(first, st.integers(0x81, 0xFF), st.integers(0, 0x7F)).map(
        lambda t: (t[0] << 16) | (t[1] << 8) | t[2]
    )
    return one | two | three


tlv_primitive = st.builds(Tlv, _tag(False), st.binary(max_size=300))

tlvs: st.SearchStrategy[Tlv] = st.recursive(
    tlv_primitive,
    lambda children: st.builds(
        lambda tag, kids: Tlv(tag, children=tuple(kids)),
        _tag(True),
        st.lists(children, min_size=1, max_size=4),
    ),
    max_leaves=12,
)
