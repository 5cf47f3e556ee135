"""Profiles: the built-in ones and the validation of broken ones."""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from card_model.errors import ProfileError
from card_model.keys import Algorithm, KeyRole
from card_model.lifecycle import LifeCycle
from card_model.profile import load_profile, load_profile_file, parse_profile


def _gen3() -> dict[str, Any]:
    text = resources.files("card_model").joinpath("data", "profiles", "gen3.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_builtin_profiles() -> None:
    gen3, gen2, gen1 = (load_profile(n) for n in ("gen3", "gen2", "gen1"))
    assert (gen3.generation, gen3.algorithm, gen3.sm2) == (3, Algorithm.SM4, True)
    assert (gen2.algorithm, gen2.sm2, gen2.atr.contactless) == (Algorithm.TDES, False, None)
    assert gen3.df_name == b"sx1.sh." + "社会保障".encode("gbk")
    assert gen3.file(0xEF06).read.kind == "auth" and gen3.file(0xEF06).read.kid == 0x03
    assert gen3.file(0xEF07).update.kind == "sm" and gen3.file(0xEF07).update.kid == 0x04
    assert gen1.file(0xEF06).read.kind == "always"
    assert gen1.key_for_role(KeyRole.RK) is None
    assert gen3.pin.try_limit == 3 and gen3.pin.min_digits == gen3.pin.max_digits == 6
    assert all(k.try_limit == 5 for k in gen3.keys)
    assert [k.kid for k in gen3.keys] == list(range(1, 11))
    assert gen3.issued_state is LifeCycle.PERSONALISED
    assert gen3.file_by_sfi(5).name == "EF05" and gen3.file(0xEF0D).size == 2048
    assert gen3.file(0xEF06).record(0x4E).variable


def test_load_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        resources.files("card_model").joinpath("data", "profiles", "gen2.toml").read_text("utf-8"), "utf-8"
    )
    assert load_profile_file(path).name == "gen2"
    with pytest.raises(ProfileError):
        load_profile_file(tmp_path / "missing.toml")
    path.write_text("not = [toml", "utf-8")
    with pytest.raises(ProfileError):
        load_profile_file(path)


def test_unknown_builtin_name() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("gen4")
    assert info.value.national_code == -1010


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("format_version", 2),
        ("extra", 1),
        ("profile.generation", 4),
        ("profile.algorithm", "aes"),
        ("profile.sm2", "yes"),
        ("profile.version", "1"),
        ("profile.spec_version", "3.0"),
        ("profile.init_org", "1100"),
        ("profile.issued_state", "sleeping"),
        ("profile.card_type", "A"),
        ("atr.contact", "3B6A00"),
        ("atr.contactless", "3B8A8001424A5353433300039000E1"),  # bad TCK
        ("application.df_name", "ZZ"),
        ("pin.try_limit", 0),
        ("pin.min_digits", 8),
        ("pin.initial", "birthday"),
        ("key.0.role", "XYZ"),
        ("key.0.uses", ["fly"]),
        ("key.1.role", "IAK"),  # duplicate role
        ("key.0.try_limit", 99),
        ("key.0.colour", "red"),
        ("file.0.kind", "cyclic"),
        ("file.0.fid", "3F00"),
        ("file.1.fid", "EF05"),  # duplicate FID
        ("file.1.sfi", 5),  # duplicate SFI
        ("file.0.read", "auth:XYZ"),
        ("file.0.read", "sometimes"),
        ("file.1.read", "auth:AMK"),  # AMK is no external-auth key
        ("file.2.update", "sm:RK"),  # RK is no MAC key
        ("file.0.records.0.encoding", "ebcdic"),
        ("file.0.records.0.element", "shoe_size"),
        ("file.0.records.1.tag", "01"),  # duplicate tag
        ("file.0.records.0.length", 0),  # card_id cannot be variable
        ("file.0.records.0.length", 300),
        ("file.0.records", []),
        ("file.3.size", 0),
        ("file.3.content", "photo"),
        ("file.3.records", []),
        ("file", []),
        ("key", _DELETE),
        ("pin", _DELETE),
    ],
)
def test_profile_validation_errors(path: str, value: Any) -> None:
    doc = copy.deepcopy(_gen3())
    _set(doc, path, value)
    with pytest.raises(ProfileError) as info:
        parse_profile(doc)
    assert info.value.error_id == "profile_invalid"


def test_sm2_profile_needs_certificate_file() -> None:
    doc = _gen3()
    doc["file"] = [f for f in doc["file"] if f.get("content") != "sign_certificate"]
    with pytest.raises(ProfileError):
        parse_profile(doc)


def test_error_names_the_entry() -> None:
    doc = _gen3()
    doc["file"][0]["records"][2]["encoding"] = "ebcdic"
    with pytest.raises(ProfileError, match=r"file\[0\]\.records\[2\]\.encoding"):
        parse_profile(doc)
