"""A card's state as a JSON-able summary, for ``sscard emulator show``.

Shows what a card manager looks at: kind, profile, card identification
code, life cycle, PIN state and tries, every key's try counter, and per
file which records exist and their lengths (binary files: size and how
many bytes are in use).  Never PINs, key values, SM2 private keys or record
contents (EF06/EF07 hold personal data).
"""

from __future__ import annotations

import os
from typing import Any

from card_model.image import CardImage
from card_model.profile import load_profile
from card_model.psam_image import PsamImage
from card_model.store import CardStore

__all__ = ["card_summary", "image_summary", "psam_summary", "summary_lines"]


def _pin_state(image: CardImage) -> str:
    if image.pin.blocked:
        return "blocked"
    return "initial" if image.pin.initial else "ok"


def card_summary(image: CardImage) -> dict[str, Any]:
    """The state of a card image (no secrets, no personal data)."""
    profile = load_profile(image.profile)
    files: list[dict[str, Any]] = []
    for spec in profile.files:
        entry: dict[str, Any] = {"name": spec.name, "fid": f"{spec.fid:04X}", "kind": spec.kind}
        if spec.sfi is not None:
            entry["sfi"] = spec.sfi
        if spec.kind == "records":
            records = image.record_files[spec.fid].records
            entry["records"] = [{"tag": f"{tag:02X}", "length": len(records[tag])} for tag in sorted(records)]
            entry["declared"] = len(spec.records)
        else:
            content = bytes(image.binary_files[spec.fid].content)
            entry["size"] = len(content)
            entry["used"] = len(content.rstrip(b"\x00"))
        files.append(entry)
    return {
        "kind": "card",
        "profile": image.profile,
        "generation": profile.generation,
        "card_id": image.card_id.hex().upper(),
        "revision": image.revision,
        "life_cycle": image.life_cycle.label,
        "life_cycle_code": f"{int(image.life_cycle):02X}",
        "life_cycle_text": image.life_cycle.text,
        "blocked_from": None if image.blocked_from is None else image.blocked_from.label,
        "pin": {
            "state": _pin_state(image),
            "retries_left": image.pin.tries_left,
            "max_tries": image.pin.try_limit,
            "initial": image.pin.initial,
        },
        "keys": [
            {
                "kid": f"{key.kid:02X}",
                "role": key.role.value,
                "algorithm": key.algorithm.value,
                "version": key.version,
                "tries_left": key.tries_left,
                "try_limit": key.try_limit,
                "locked": key.locked,
            }
            for key in sorted(image.keys.values(), key=lambda k: k.kid)
        ],
        "sm2_key_pair": image.sm2_sign_key is not None,
        "files": files,
    }


def psam_summary(image: PsamImage) -> dict[str, Any]:
    """The state of a PSAM image (terminal number and key list, no key values)."""
    return {
        "kind": "psam",
        "revision": image.revision,
        "terminal_number": image.terminal_number_text,
        "keys": [
            {
                "kid": f"{key.kid:02X}",
                "role": key.role.value,
                "algorithm": key.algorithm.value,
                "version": key.version,
                "usage": sorted(key.usage),
            }
            for key in sorted(image.keys.values(), key=lambda k: k.kid)
        ],
    }


def image_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Summary of the image file at ``path`` (card or PSAM)."""
    image = CardStore(path).load()
    if isinstance(image, PsamImage):
        return psam_summary(image)
    return card_summary(image)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable lines (Chinese labels, English identifiers)."""
    if summary["kind"] == "psam":
        lines = [
            f"PSAM  终端编号 {summary['terminal_number']}  版本 {summary['revision']}",
            "密钥 (KID 角色 算法 用途):",
        ]
        lines += [
            f"  {k['kid']}  {k['role']:<4} {k['algorithm']:<5} {','.join(k['usage'])}"
            for k in summary["keys"]
        ]
        return lines
    pin = summary["pin"]
    lines = [
        f"卡片  {summary['profile']}（第{summary['generation']}代）  识别码 {summary['card_id']}  "
        f"版本 {summary['revision']}",
        f"生命周期  {summary['life_cycle_code']} {summary['life_cycle']}（{summary['life_cycle_text']}）",
        f"PIN  {pin['state']}  剩余 {pin['retries_left']}/{pin['max_tries']} 次",
        f"SM2 密钥对  {'有' if summary['sm2_key_pair'] else '无'}",
        "密钥 (KID 角色 算法 剩余/上限):",
    ]
    for key in summary["keys"]:
        locked = "  已锁定 locked" if key["locked"] else ""
        counter = f"{key['tries_left']}/{key['try_limit']}"
        lines.append(f"  {key['kid']}  {key['role']:<4} {key['algorithm']:<5} {counter}{locked}")
    lines.append("文件:")
    for entry in summary["files"]:
        if entry["kind"] == "records":
            tags = " ".join(f"{r['tag']}({r['length']})" for r in entry["records"]) or "-"
            lines.append(f"  {entry['name']}  记录 {len(entry['records'])}/{entry['declared']}: {tags}")
        else:
            lines.append(f"  {entry['name']}  二进制 {entry['used']}/{entry['size']} 字节")
    return lines
