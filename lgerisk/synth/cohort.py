"""A synthetic cohort on disk: images, masks, outcomes, ground truth, the cohort marker and a README.

Layout (docs/synthetic.md, "Files written"): ``images/<id>.nii.gz``, ``masks/<id>.nii.gz``,
``outcomes.csv`` (:data:`OUTCOME_COLUMNS`), ``ground_truth.csv``, ``synth.json`` (the cohort marker,
:data:`~lgerisk.synth.markers.MARKER_FILE`) and ``README.txt`` (the command that regenerates it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from lgerisk.errors import InputError
from lgerisk.io.atomic import write_csv, write_image, write_json, write_text
from lgerisk.synth.config import SynthConfig
from lgerisk.synth.generator import generate_case
from lgerisk.synth.hazard import DEFAULT_HAZARD_VERSION
from lgerisk.synth.markers import (
    GENERATOR,
    MARKER_FILE,
    SCAN_MARKER,
    SYNTH_VERSION,
    SYNTHETIC_NOTICE,
)

OUTCOME_COLUMNS = ("case_id", "time", "event", "age", "sex", "lvef", "diabetes")
"""The columns of ``outcomes.csv``, in order."""


def regenerate_command(out_dir: str | Path, config: SynthConfig) -> str:
    """The ``lgerisk synth`` command line that rebuilds a cohort with ``config``."""
    cmd = f"lgerisk synth {out_dir} --cases {config.n_cases} --seed {config.seed}"
    if config.small:
        cmd += " --small"
    if config.hazard_version != DEFAULT_HAZARD_VERSION:
        cmd += f" --hazard-version {config.hazard_version}"
    default = SynthConfig(
        n_cases=config.n_cases, seed=config.seed, small=config.small, hazard_version=config.hazard_version
    )
    if config != default:
        cmd += "  (non-default generator settings: see synth.json)"
    return cmd


def config_of_cohort(folder: str | Path) -> SynthConfig:
    """The :class:`SynthConfig` a cohort folder was generated with, read from its ``synth.json``.

    Cohorts from generator 1.0 (no ``hazard_version``) are hazard version 1, so that
    ``generate_truth(k, config_of_cohort(folder))`` reproduces their cases whatever the default.
    """
    path = Path(folder) / MARKER_FILE
    try:
        meta = json.loads(path.read_text())
        config = dict(meta["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable lgerisk synth marker ({exc})") from exc
    config.setdefault("hazard_version", meta.get("hazard_version", 1))
    return SynthConfig.from_dict(config)


def generate_cohort(
    out_dir: str | Path, config: SynthConfig, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """Write a synthetic cohort folder and return its ground-truth table.

    Writes ``images/<id>.nii.gz``, ``masks/<id>.nii.gz``, ``outcomes.csv``,
    ``ground_truth.csv``, ``synth.json`` and ``README.txt`` under ``out_dir`` (atomically, file by
    file); calls ``progress(1)`` after each case. The generator marks what it writes: every image and
    mask carries :data:`SCAN_MARKER` in its NIfTI header description, and ``synth.json`` (the cohort
    marker) names :data:`GENERATOR` and that scan marker (see :mod:`lgerisk.io.provenance`).

    Example:
        >>> table = generate_cohort("synth_out", SynthConfig(n_cases=4, small=True))  # doctest: +SKIP
        >>> list(table.columns[:2])  # doctest: +SKIP
        ['case_id', 'log_hazard']
    """
    out = Path(out_dir)
    truths: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for index in range(config.n_cases):
        case = generate_case(index, config)
        for volume in (case.image, case.mask):
            volume.SetMetaData("ITK_FileNotes", SCAN_MARKER)  # written as the NIfTI header's descrip
        write_image(out / "images" / f"{case.case_id}.nii.gz", case.image)
        write_image(out / "masks" / f"{case.case_id}.nii.gz", case.mask)
        truths.append({**case.truth, **case.clinical})
        outcomes.append({"case_id": case.case_id, **case.outcome, **case.clinical})
        if progress is not None:
            progress(1)
    table = pd.DataFrame(truths)
    # the full log-hazard, beside it the image-only log-hazard (the image terms alone) and the clinical part
    first = ["case_id", "log_hazard", "lp_image", "lp_clinical"]
    first += [t.name for t in config.hazard.terms if t.name in table.columns and t.name not in OUTCOME_COLUMNS]
    first += ["scar_pattern", "territory", "scar_description", "event_time", "censor_time"]
    table = table[first + [c for c in table.columns if c not in first]]
    write_csv(out / "ground_truth.csv", table)
    write_csv(out / "outcomes.csv", pd.DataFrame(outcomes)[list(OUTCOME_COLUMNS)])
    write_json(
        out / MARKER_FILE,
        {
            "synthetic": SYNTHETIC_NOTICE,
            "generator": GENERATOR,
            "generator_version": SYNTH_VERSION,
            "hazard_version": config.hazard_version,
            "scan_marker": SCAN_MARKER,
            "config": config.to_dict(),
            "hazard_model": config.hazard.to_dict(),
            "labels": {
                "0": "background",
                "1": "LV blood pool (papillary muscles included)",
                "2": "myocardium (grey zone included)",
                "3": "scar core",
                "4": "no-reflow",
            },
        },
    )
    write_text(
        out / "README.txt",
        "Synthetic LGE cohort from lgerisk synth (simulated images, labels and outcomes; not patient data).\n"
        f"Regenerate with: {regenerate_command(out_dir, config)}\n",
    )
    return table
