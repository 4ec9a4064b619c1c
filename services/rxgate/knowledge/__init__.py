"""Drug knowledge: loading and validating the monographs and vocabularies in `data/`.

    load_knowledge(directory=None) -> Knowledge      # raises KnowledgeError, naming file and field

`directory` defaults to $RXGATE_KNOWLEDGE_DIR, else the built-in `data/` next to this file.
Layout of a knowledge directory:

    knowledge.toml        version (carried by every decision) and description
    routes.toml           routes of administration and their spellings
    labs.toml             laboratory codes (short and LOINC), unit conversions (any case, UCUM
                          spellings, micro as µ, μ or u) and the upper limit of normal (`uln`)
    drug_classes.toml     drug classes for combination rules
    drugs/<drug>.toml     one monograph per drug (see drugs/isatuximab.toml)

Loading is all or nothing: any malformed file, unknown key, or cross-reference that does not
resolve (a combination naming a class that does not exist, a lab limit on an unknown lab, a
route missing from the vocabulary, two drugs claiming one name, a limit as a multiple of the
upper limit of normal of a lab without one, two lab limits with one rule name, [contraception]
without the childbearing ages of [pregnancy]) raises before anything is used.
"""
from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from pydantic import BaseModel, ValidationError

from .memo import memoised
from .models import (
    DrugClassTable,
    LabDefinition,
    LabVocabulary,
    Manifest,
    Monograph,
    RouteVocabulary,
    slug,
)

BUILTIN_DIR = Path(__file__).parent / "data"

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class KnowledgeError(Exception):
    """The knowledge cannot be used; the message names the file and the field."""




@dataclass(frozen=True)
class DrugIdentity:
    """What the knowledge can say about a drug name (and code) as written in an order."""

    name: str  # canonical generic name when known, else the name as written, lower-case
    classes: frozenset[str]
    known: bool


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


@dataclass(frozen=True)
class Knowledge:
    version: str
    monographs: dict[str, Monograph]
    routes: dict[str, str]  # spelling (lower-case) -> canonical route
    labs: dict[str, LabDefinition]  # canonical lab code -> definition
    lab_codes: dict[str, str]  # any accepted code (upper-case) -> canonical lab code
    classes: DrugClassTable
    # canonical lab code -> {unit folded by _fold_unit -> factor}
    lab_units: dict[str, dict[str, float]] = field(default_factory=dict)
    # memo of identify(): the same few names recur on every order of a patient
    _identities: dict = field(default_factory=dict, compare=False, repr=False)
    # memos of monograph_for(), lab() and lab_factor() as written (bounded like _identities)
    _monographs_memo: dict = field(init=False, default_factory=dict, compare=False, repr=False)
    _lab_memo: dict = field(init=False, default_factory=dict, compare=False, repr=False)
    _factor_memo: dict = field(init=False, default_factory=dict, compare=False, repr=False)
    # what the rules precompute per monograph of this knowledge (per_monograph())
    _per_monograph: dict = field(init=False, default_factory=dict, compare=False, repr=False)
    # memo of route() as written (bounded like _identities): every order asks, twice
    _route_memo: dict = field(init=False, default_factory=dict, compare=False, repr=False)

    # --- drugs ---------------------------------------------------------------------------

    def monograph_for(self, name: str, code_system: str | None = None,
                      code_value: str | None = None) -> Monograph | None:
        """The monograph for a drug as written: by generic or trade name, or by code."""
        try:  # the memo read here first: memoised()'s lookup without its call
            return self._monographs_memo[(name, code_system, code_value)]
        except KeyError:
            pass
        return memoised(self._monographs_memo, (name, code_system, code_value),
                        self._monograph_for, name, code_system, code_value)

    def _monograph_for(self, name: str, code_system: str | None,
                       code_value: str | None) -> Monograph | None:
        wanted = name.strip().lower()
        for mono in self.monographs.values():
            if wanted in mono.name_tuple:
                return mono
            if code_value and any(_same_code(c.system, c.value, code_system, code_value)
                                  for c in mono.all_codes):
                return mono
        return None

    def identify(self, name: str, code_system: str | None = None,
                 code_value: str | None = None) -> DrugIdentity:
        """Canonical name and classes of any drug (ordered, active or a current medication)."""
        try:  # the memo read here first (as in monograph_for)
            return self._identities[(name, code_system, code_value)]
        except KeyError:
            pass
        return memoised(self._identities, (name, code_system, code_value),
                        self._identify, name, code_system, code_value)

    def canonical_name(self, name: str, code_system: str | None = None,
                       code_value: str | None = None) -> str:
        """identify(...).name: the drug an order or medication is, for grouping by drug."""
        try:
            return self._identities[(name, code_system, code_value)].name
        except KeyError:
            return self.identify(name, code_system, code_value).name

    def _identify(self, name: str, code_system: str | None, code_value: str | None) -> DrugIdentity:
        written = name.strip().lower()
        words = _words(written)
        canonical: str | None = None
        mono = self.monograph_for(name, code_system, code_value)
        if mono:
            canonical = mono.drug
        classes: set[str] = set()
        for class_name, drug_class in self.classes.classes.items():
            for member in drug_class.members:
                names = [member.name.lower(), *(t.lower() for t in member.trade_names)]
                by_name = written in names or any(n in words for n in names if " " not in n)
                by_code = code_value is not None and any(
                    _same_code(c.system, c.value, code_system, code_value) for c in member.codes)
                if by_name or by_code:
                    classes.add(class_name)
                    canonical = canonical or member.name.lower()
            if code_system and code_value and code_system.lower() == "atc" and any(
                    code_value.upper().startswith(p.upper()) for p in drug_class.atc_prefixes):
                classes.add(class_name)
            if any(w.endswith(s) and len(w) > len(s) + 2
                   for w in words for s in drug_class.name_suffixes):
                classes.add(class_name)
        return DrugIdentity(canonical or written, frozenset(classes), canonical is not None)

    def class_label(self, class_name: str) -> str:
        return self.classes.classes[class_name].label

    def per_monograph(self, kind: str, mono: Monograph,
                      build: Callable[[Knowledge, Monograph], T]) -> T:
        """build(self, mono), computed once per monograph of this knowledge and kept with it: a
        rule's tables (lab limits with their texts, lowered terms) built on first use. A reloaded
        knowledge builds its own; a monograph that is not this knowledge's is built each time."""
        kept = self.kept_for(mono)
        try:
            return kept[kind]
        except KeyError:
            pass
        value = kept[kind] = build(self, mono)
        return value

    def kept_for(self, mono: Monograph) -> dict:
        """The values per_monograph keeps for `mono`, by kind: this knowledge's own dict for one
        of its monographs (per_monograph fills it; a rule may read it first, see OrderContext),
        a new empty one for a monograph that is not this knowledge's (nothing kept for it)."""
        # kept per monograph object: its id -> (the monograph, {kind: value}); the monograph is
        # kept with its values, so its id names no other object while they are kept
        kept = self._per_monograph.get(id(mono))
        if kept is not None and kept[0] is mono:
            return kept[1]
        if self.monographs.get(mono.drug) is not mono:
            return {}
        kept = self._per_monograph[id(mono)] = (mono, {})
        return kept[1]

    # --- routes and labs -----------------------------------------------------------------

    def route(self, written: str) -> str | None:
        """Canonical route for a route as written ('intravenous' -> 'IV'); None if unknown."""
        try:  # the memo read here first (as in monograph_for)
            return self._route_memo[written]
        except KeyError:
            pass
        return memoised(self._route_memo, written, self._route, written)

    def _route(self, written: str) -> str | None:
        return self.routes.get(written.strip().lower())

    def lab(self, code: str) -> str | None:
        """Canonical lab code for a code as reported ('751-8' -> 'ANC'); None if unknown."""
        return memoised(self._lab_memo, code, self._lab, code)

    def _lab(self, code: str) -> str | None:
        return self.lab_codes.get(code.strip().upper())

    def lab_factor(self, lab: str, unit: str) -> float | None:
        """Factor converting `unit` (as reported, any case: '10*9/l') to the lab's unit; None if unknown."""
        return memoised(self._factor_memo, (lab, unit), self._lab_factor, lab, unit)

    def _lab_factor(self, lab: str, unit: str) -> float | None:
        return self.lab_units.get(lab, {}).get(_fold_unit(unit))


# micro as a letter: the micro sign (U+00B5, which casefold() makes U+03BC), Greek mu and
# the ASCII "u" of UCUM are one unit; "×" is the "x" of "x10^9/L"
_UNIT_LETTERS = str.maketrans({"\u03bc": "u", "\u00b5": "u", "\u00d7": "x"})


def _fold_unit(unit: str) -> str:
    """A unit as compared: case-insensitive, without spaces, micro written "u"
    ('cells/µL' is 'cells/uL', '10^9/l' is '10^9/L', 'mL/min/1.73 m2' is 'mL/min/1.73m2')."""
    return "".join(unit.casefold().translate(_UNIT_LETTERS).split())


def _lab_units(path: Path, labs: dict[str, LabDefinition]) -> dict[str, dict[str, float]]:
    """Each lab's units folded for case-insensitive lookup; two spellings that fold alike must agree."""
    out: dict[str, dict[str, float]] = {}
    for name, lab in labs.items():
        folded: dict[str, float] = {}
        for unit, factor in lab.factors.items():
            key = _fold_unit(unit)
            if folded.get(key, factor) != factor:
                raise KnowledgeError(
                    f"{path}: labs.{name}.factors: {unit!r} differs only in case from another unit "
                    f"with a different factor")
            folded[key] = factor
        out[name] = folded
    return out


def _same_code(sys_a: str, val_a: str, sys_b: str | None, val_b: str | None) -> bool:
    return (sys_b is not None and val_b is not None
            and sys_a.strip().lower() == sys_b.strip().lower()
            and val_a.strip().upper() == val_b.strip().upper())


def _read(path: Path, model: type[M]) -> M:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(f"{path}: file is missing") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise KnowledgeError(f"{path}: not valid TOML: {e}") from None
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in e.errors(include_url=False))
        raise KnowledgeError(f"{path}: {problems}") from None


def load_knowledge(directory: str | os.PathLike | None = None) -> Knowledge:
    """Load and cross-check a knowledge directory; all or nothing."""
    root = Path(directory or os.environ.get("RXGATE_KNOWLEDGE_DIR") or BUILTIN_DIR)
    if not root.is_dir():
        raise KnowledgeError(f"{root}: knowledge directory does not exist")
    manifest = _read(root / "knowledge.toml", Manifest)
    route_vocab = _read(root / "routes.toml", RouteVocabulary)
    lab_vocab = _read(root / "labs.toml", LabVocabulary)
    classes = _read(root / "drug_classes.toml", DrugClassTable)

    routes = _index(root / "routes.toml", "routes", route_vocab.routes, str.lower)
    lab_codes = _index(root / "labs.toml", "labs",
                       {name: lab.codes for name, lab in lab_vocab.labs.items()}, str.upper)

    monographs: dict[str, Monograph] = {}
    drug_files = sorted((root / "drugs").glob("*.toml"))
    if not drug_files:
        raise KnowledgeError(f"{root / 'drugs'}: no monograph files (*.toml)")
    claimed: dict[str, str] = {}
    for path in drug_files:
        mono = _read(path, Monograph)
        if path.stem != mono.drug.replace(" ", "_"):
            raise KnowledgeError(f"{path}: drug: {mono.drug!r} does not match the file name")
        _cross_check(path, mono, routes, lab_vocab, classes)
        for name in mono.names:
            if name in claimed:
                raise KnowledgeError(f"{path}: trade_names: {name!r} is also claimed by {claimed[name]}")
            claimed[name] = mono.drug
        monographs[mono.drug] = mono

    return Knowledge(
        version=manifest.version,
        monographs=monographs,
        routes=routes,
        labs=dict(lab_vocab.labs),
        lab_codes=lab_codes,
        classes=classes,
        lab_units=_lab_units(root / "labs.toml", dict(lab_vocab.labs)),
    )


def _index(path: Path, table: str, entries: dict[str, list[str]], fold) -> dict[str, str]:
    """Spelling -> canonical name, each canonical name also a spelling of itself; no spelling twice."""
    index: dict[str, str] = {}
    for canonical, spellings in entries.items():
        for spelling in [canonical, *spellings]:
            key = fold(spelling.strip())
            if index.get(key, canonical) != canonical:
                raise KnowledgeError(
                    f"{path}: {table}.{canonical}: {spelling!r} is also a spelling of {index[key]}")
            index[key] = canonical
    return index


def _cross_check(path: Path, mono: Monograph, routes: dict[str, str],
                 labs: LabVocabulary, classes: DrugClassTable) -> None:
    canonical_routes = set(routes.values())
    route_lists = {"dose.routes": mono.dose.routes}
    if mono.infusion:
        route_lists["infusion.routes"] = mono.infusion.routes
    if mono.premedication:
        route_lists["premedication.routes"] = mono.premedication.routes
    for i, product in enumerate(mono.products):
        route_lists[f"products.{i}.routes"] = mono.routes_of(product)
        if product.infusion:
            route_lists[f"products.{i}.infusion.routes"] = product.infusion.routes
    for field, listed in route_lists.items():
        for r in listed:
            if r not in canonical_routes:
                raise KnowledgeError(f"{path}: {field}: {r!r} is not a route in routes.toml")
    for i, combo in enumerate(mono.combinations):
        if combo.drug_class not in classes.classes:
            raise KnowledgeError(
                f"{path}: combinations.{i}.drug_class: {combo.drug_class!r} is not a class in drug_classes.toml")
    rule_names: dict[str, int] = {}
    for i, limit in enumerate(mono.lab_limits):
        if limit.lab not in labs.labs:
            raise KnowledgeError(f"{path}: lab_limits.{i}.lab: {limit.lab!r} is not a lab in labs.toml")
        if limit.required and limit.max_age_days is None:
            raise KnowledgeError(f"{path}: lab_limits.{i}.max_age_days: required for a required lab")
        if limit.above_uln is not None and labs.labs[limit.lab].uln is None:
            raise KnowledgeError(f"{path}: lab_limits.{i}.above_uln: lab {limit.lab!r} has no `uln` "
                                 f"(upper limit of normal) in labs.toml")
        for name in lab_limit_names(limit).values():
            if name in rule_names:
                raise KnowledgeError(
                    f"{path}: lab_limits.{i}.name: rule name {name!r} is also that of "
                    f"lab_limits.{rule_names[name]}; give the limits distinct names")
            rule_names[name] = i
    if mono.contraception is not None and mono.pregnancy is None:
        raise KnowledgeError(f"{path}: contraception: needs a [pregnancy] section (its "
                             f"childbearing ages say who may become pregnant)")
    if mono.concurrent is not None and STALE_ORDER_RULE in classes.classes:
        raise KnowledgeError(f"{path}: concurrent: the rule name {STALE_ORDER_RULE!r} is also a "
                             f"drug class in drug_classes.toml")


# the rule name of [concurrent]'s stale-order finding (<drug>.combination.stale_order)
STALE_ORDER_RULE = "stale_order"


@functools.lru_cache(maxsize=1024)  # a LabLimit is frozen and hashable
def lab_limit_names(limit) -> dict[str, str]:
    """The rule names of a lab limit's findings, by side ("low": below, "high": above):
    <lab>_low / <lab>_high, or `name` as given (`name`_low / _high for a limit on both sides)."""
    high = limit.above if limit.above is not None else limit.above_uln
    sides = [side for side, v in (("low", limit.below), ("high", high)) if v is not None]
    if limit.name:
        return {sides[0]: limit.name} if len(sides) == 1 else {s: f"{limit.name}_{s}" for s in sides}
    return {s: f"{slug(limit.lab)}_{s}" for s in sides}


__all__ = ["Knowledge", "lab_limit_names", "STALE_ORDER_RULE", "KnowledgeError", "DrugIdentity", "load_knowledge", "BUILTIN_DIR"]
