"""Loads the registry's data files (rules, states, errors) once.

The 15 partner banks are the card model's (`card_model.values.partner_banks`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


def _load(name: str) -> dict[str, Any]:
    text = resources.files("terminal.registry").joinpath("data", name).read_text("utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class ErrorText:
    national_code: int
    exit_code: int
    en: str
    zh: str


@dataclass(frozen=True)
class Reason:
    reason_id: str
    allowed: bool
    block_on_card: bool
    suspends: frozenset[str]
    national_code: int
    zh: str
    en: str


@dataclass(frozen=True)
class Label:
    zh: str
    en: str


@dataclass(frozen=True)
class Rules:
    temporary_loss_days: int
    suspends_after_lapse: frozenset[str]
    bank_change_min_months: int
    financial_restriction_months: int
    agent_operations: frozenset[str]
    activation_ends_medical_on: dict[int, frozenset[int]]
    replacement_generations: dict[int, frozenset[int]]
    unknown_card_policy: str


@lru_cache(maxsize=1)
def errors() -> dict[str, ErrorText]:
    return {
        key: ErrorText(int(v["national_code"]), int(v["exit_code"]), v["en"], v["zh"])
        for key, v in _load("errors.toml").items()
    }


@lru_cache(maxsize=1)
def _states() -> dict[str, Any]:
    return _load("states.toml")


def _labels(section: str) -> dict[str, Label]:
    return {k: Label(v["zh"], v["en"]) for k, v in _states()[section].items()}


@lru_cache(maxsize=1)
def statuses() -> dict[str, Label]:
    return _labels("status")


@lru_cache(maxsize=1)
def functions() -> dict[str, Label]:
    return _labels("function")


@lru_cache(maxsize=1)
def operations() -> dict[str, Label]:
    return _labels("operation")


@lru_cache(maxsize=1)
def journal_states() -> dict[str, Label]:
    return _labels("journal_state")


@lru_cache(maxsize=1)
def reasons() -> dict[str, Reason]:
    every = frozenset(functions())
    out: dict[str, Reason] = {}
    for key, v in _states()["reason"].items():
        suspends = every if v.get("suspends_all", False) else frozenset(v.get("suspends", ()))
        unknown = suspends - every
        if unknown:
            raise RuntimeError(f"states.toml reason {key} names unknown functions {sorted(unknown)}")
        out[key] = Reason(
            key,
            bool(v["allowed"]),
            bool(v["block_on_card"]),
            suspends,
            int(v["national_code"]),
            v["zh"],
            v["en"],
        )
    return out


def _generation_map(raw: dict[str, list[int]]) -> dict[int, frozenset[int]]:
    return {int(k): frozenset(int(g) for g in v) for k, v in raw.items()}


@lru_cache(maxsize=1)
def rules() -> Rules:
    r = _load("rules.toml")
    policy = r["presentation"]["unknown_card"]
    if policy not in ("allow", "refuse"):
        raise RuntimeError(f"rules.toml presentation.unknown_card must be allow or refuse, not {policy!r}")
    return Rules(
        temporary_loss_days=int(r["temporary_loss"]["days"]),
        suspends_after_lapse=frozenset(r["temporary_loss"].get("suspends_after_lapse", ())),
        bank_change_min_months=int(r["bank_change"]["min_months"]),
        financial_restriction_months=int(r["social_security_cancellation"]["financial_restriction_months"]),
        agent_operations=frozenset(r["agent"]["operations"]),
        activation_ends_medical_on=_generation_map(r["activation"]["ends_medical_on"]),
        replacement_generations=_generation_map(r["replacement"]["allowed_generations"]),
        unknown_card_policy=policy,
    )


def status_label(status: str) -> Label:
    return statuses().get(status, Label(status, status))


def operation_label(operation: str) -> Label:
    return operations().get(operation, Label(operation, operation))


@lru_cache(maxsize=1)
def fleet_grants() -> tuple[str, ...]:
    """GRANT templates ({schema}, {role}) of a fleet's terminal role (data/fleet.toml)."""
    return tuple(str(statement) for statement in _load("fleet.toml")["grants"])
