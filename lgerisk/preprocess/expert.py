"""Derived scar against experts' scar labels: per-case numbers and agreement over a cohort.

Used by ``benchmarks/scar_agreement.py`` and the real-scan tests. Each case is preprocessed once with
the ``label`` method (the experts' scar %) and once per derived setting; the derived run ignores the
scar labels and reports its Dice with them (``scar_label_dice``), so the numbers are exactly what
``lgerisk preprocess --scar-method ...`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

import numpy as np

from lgerisk.evaluation.agreement import Agreement, agreement
from lgerisk.io.cohort import Case
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.scar import ScarRules
from lgerisk.types import json_float


@dataclass(frozen=True)
class ScarComparison:
    """One case: experts' scar % and a derived setting's scar %, grey-zone % and Dice with the experts, and
    (from ``compare_with_experts``) the derived scar's confidence and QC flags."""

    case_id: str
    setting: str
    expert_scar_percent: float
    derived_scar_percent: float
    derived_greyzone_percent: float
    dice: float | None
    confidence: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettingAgreement:
    """A derived setting over a cohort: scar % agreement with the experts and the median Dice."""

    setting: str
    agreement: Agreement
    median_dice: float


def compare_with_experts(
    cases: Sequence[Case], labels: str, settings: dict[str, PreprocessConfig]
) -> list[ScarComparison]:
    """Per case and setting, the derived scar against the experts' (``labels`` must name scar).

    ``settings`` maps a display name to a config whose ``scar_method`` is derived; its ``labels`` are
    replaced by ``labels``.

    Example:
        >>> methods = {"fwhm": PreprocessConfig(scar_method="fwhm")}                 # doctest: +SKIP
        >>> rows = compare_with_experts(cohort.cases, "myops", methods)               # doctest: +SKIP
    """
    from lgerisk.preprocess.pipeline import preprocess_case

    rows = []
    for case in cases:
        expert = preprocess_case(case, PreprocessConfig(labels=labels, scar_method="label")).qc
        for name, config in settings.items():
            qc = preprocess_case(case, replace(config, labels=labels)).qc
            rows.append(
                ScarComparison(
                    case.case_id,
                    name,
                    json_float(expert["scar_percent"]),
                    json_float(qc["scar_percent"]),
                    json_float(qc["greyzone_percent"]),
                    cast("float | None", qc["scar_label_dice"]),  # None where the mask has no scar labels
                    cast("str | None", qc.get("scar_confidence")),
                    tuple(cast("list[str]", qc.get("scar_flags") or ())),
                )
            )
    return rows


def summarise(rows: Sequence[ScarComparison]) -> list[SettingAgreement]:
    """Agreement and median Dice per setting, in the order the settings first appear."""
    names = list(dict.fromkeys(row.setting for row in rows))
    out = []
    for name in names:
        mine = [row for row in rows if row.setting == name]
        dices = [row.dice for row in mine if row.dice is not None]
        out.append(
            SettingAgreement(
                name,
                agreement(
                    np.array([row.derived_scar_percent for row in mine]),
                    np.array([row.expert_scar_percent for row in mine]),
                ),
                float(np.median(dices)) if dices else float("nan"),
            )
        )
    return out


@dataclass(frozen=True)
class DerivedSetting:
    """One derived-scar setting of a selection grid: method, its arguments and the fixed rules."""

    name: str
    method: str
    nsd: float = 5.0
    remote: str = "mixture"
    smoothing_mm: float = 2.5
    rules: ScarRules = ScarRules()


def compare_grid(cases: Sequence[Case], labels: str, settings: Sequence[DerivedSetting]) -> list[ScarComparison]:
    """Like ``compare_with_experts`` for many settings at once: each case is read once and only the
    scar step is repeated (scar % and Dice on the acquired grid, as preprocess's QC counts them)."""
    from lgerisk.io.labels import NOREFLOW, SCAR, parse_label_map
    from lgerisk.preprocess.pipeline import read_canonical
    from lgerisk.preprocess.scar import dice, myocardium_of, quantify_scar

    label_map = parse_label_map(labels)
    rows = []
    for case in cases:
        canonical = read_canonical(case, label_map)
        expert = np.isin(canonical.internal, (SCAR, NOREFLOW))
        myocardium = myocardium_of(canonical.internal)
        expert_percent = 100.0 * expert.sum() / max(int(myocardium.sum()), 1)
        for setting in settings:
            result = quantify_scar(
                canonical.values,
                canonical.internal,
                setting.method,
                nsd=setting.nsd,
                remote=setting.remote,
                smoothing_mm=setting.smoothing_mm,
                spacing=canonical.image.GetSpacing(),
                rules=setting.rules,
            )
            found = np.isin(result.labels, (SCAR, NOREFLOW))
            grey = result.labels == 5
            rows.append(
                ScarComparison(
                    case.case_id,
                    setting.name,
                    float(expert_percent),
                    100.0 * found.sum() / max(int(myocardium.sum()), 1),
                    100.0 * grey.sum() / max(int(myocardium.sum()), 1),
                    dice(found, expert),
                )
            )
    return rows


@dataclass(frozen=True)
class LeaveOneOut:
    """Choosing a setting on all scans but one and scoring it on that one, for every scan."""

    agreement: Agreement
    median_dice: float
    chosen: dict[str, str]  # case id -> the setting chosen without it


def leave_one_out(rows: Sequence[ScarComparison]) -> LeaveOneOut:
    """Honest estimate of a selection: per held-out case, the setting with the lowest mean absolute
    error on the other cases, scored on the held-out case.

    Example:
        >>> rows = [ScarComparison(c, s, 10.0, 10.0 + (s == "b") * 5 + (c == "x") * (s == "a") * 9, 0.0, 0.5)
        ...         for c in "xyz" for s in "ab"]
        >>> result = leave_one_out(rows)
        >>> result.chosen, round(result.agreement.mean_absolute_error, 2)
        ({'x': 'a', 'y': 'a', 'z': 'a'}, 3.0)
    """
    by_case: dict[str, dict[str, ScarComparison]] = {}
    for row in rows:
        by_case.setdefault(row.case_id, {})[row.setting] = row
    names = list(dict.fromkeys(row.setting for row in rows))
    chosen, measured, reference, dices = {}, [], [], []
    for held_out in by_case:
        others = [case for case in by_case if case != held_out]
        best = min(
            names,
            key=lambda name: float(
                np.mean(
                    [abs(by_case[c][name].derived_scar_percent - by_case[c][name].expert_scar_percent) for c in others]
                )
            ),
        )
        row = by_case[held_out][best]
        chosen[held_out] = best
        measured.append(row.derived_scar_percent)
        reference.append(row.expert_scar_percent)
        if row.dice is not None:
            dices.append(row.dice)
    return LeaveOneOut(
        agreement(np.array(measured), np.array(reference)), float(np.median(dices)) if dices else float("nan"), chosen
    )
