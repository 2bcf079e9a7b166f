"""The labelled cases of a finetune run: outcomes (time, event) and clinical covariates, and why a case is left
out; the checks that the outcomes can train a survival model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.training.data import PreparedData
    from lgerisk.training.finetune_config import FinetuneConfig

__all__ = ["check_outcomes", "labelled_cases"]


def labelled_cases(
    prepared: PreparedData, outcomes: str | os.PathLike[str] | None, covariates: tuple[str, ...]
) -> tuple[list[str], dict[str, float], dict[str, int], pd.DataFrame, dict[str, str]]:
    """The usable cases with an outcome (and every requested covariate): ids, time, event, covariate
    frame, and the cases left out with why."""
    import pandas as pd

    from lgerisk.io.cohort import read_outcomes

    rows = read_outcomes(Path(outcomes)) if outcomes is not None else None
    time, event, values, skipped = {}, {}, {}, {}
    for case in prepared.cases:
        if rows is not None:
            if case.case_id not in rows:
                skipped[case.case_id] = "no outcome row"
                continue
            t, e, extra = rows[case.case_id]
        else:
            t, e, extra = case.time, case.event, case.covariates
        if t is None or e is None:
            skipped[case.case_id] = "no outcome"
            continue
        time[case.case_id], event[case.case_id] = float(t), int(e)
        values[case.case_id] = extra or {}
    # reindex: an outcomes table without covariate columns gives empty dicts, which from_dict drops
    frame = pd.DataFrame.from_dict(values, orient="index").reindex(list(values))
    source = outcomes if outcomes is not None else "the cohort's outcomes"
    for name in covariates:
        if name not in frame.columns:
            known = ", ".join(sorted(str(c) for c in frame.columns)[:12]) or "none"
            raise InputError(f"{source}: covariate {name!r} is not in the outcomes table (columns: {known}).")
        numeric = pd.to_numeric(frame[name], errors="coerce")
        bad = frame[name].notna() & numeric.isna()
        if bad.any():
            raise InputError(
                f"{source}: covariate {name!r} is not numeric (case {bad[bad].index[0]!r} has "
                f"{frame.loc[bad[bad].index[0], name]!r})."
            )
        frame[name] = numeric
    covariate_frame = frame[list(covariates)] if covariates else pd.DataFrame(index=frame.index)
    missing = covariate_frame.index[covariate_frame.isna().any(axis=1)] if covariates else []
    for case_id in missing:
        skipped[case_id] = "missing covariate value"
        time.pop(case_id)
        event.pop(case_id)
    ids = [c for c in prepared.case_ids if c in time]
    return ids, time, event, covariate_frame.loc[ids].astype(float), skipped


def check_outcomes(
    ids: list[str],
    event: dict[str, int],
    skipped: dict[str, str],
    data: str | os.PathLike[str],
    config: FinetuneConfig,
) -> None:
    n_events = sum(event[c] for c in ids)
    if not ids:
        raise InputError(
            f"{data}: no case has an outcome (time, event); give outcomes=FILE or an outcomes.csv beside the cohort.",
            setting="outcomes",
        )
    if n_events == 0:
        raise InputError(f"{data}: all {len(ids)} labelled cases are censored; a survival model needs events.")
    if len(ids) - n_events == 0:
        raise InputError(
            f"{data}: all {len(ids)} labelled cases had the event; nothing is censored, check the event column."
        )
    if config.folds and n_events < config.folds:
        raise InputError(
            f"{data}: {n_events} events cannot be spread over {config.folds} folds; use folds="
            f"{max(2, n_events)} or fewer.",
            setting="folds",
        )
