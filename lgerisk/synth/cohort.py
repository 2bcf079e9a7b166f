"""A synthetic cohort on disk: images, masks, outcomes, ground truth, the cohort marker and a README.

Layout (docs/synthetic.md, "Files written"): ``images/<id>.nii.gz``, ``masks/<id>.nii.gz``,
``outcomes.csv`` (:data:`OUTCOME_COLUMNS`), ``ground_truth.csv``, ``synth.json`` (the cohort marker,
:data:`~lgerisk.io.markers.MARKER_FILE`) and ``README.txt`` (the command that regenerates it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from lgerisk.errors import InputError
from lgerisk.io.atomic import write_csv, write_image, write_json, write_text
from lgerisk.io.markers import (
    GENERATOR,
    MARKER_FILE,
    SCAN_MARKER,
    SYNTH_VERSION,
    SYNTHETIC_NOTICE,
    cohort_marker,
    is_synthetic_case_id,
)
from lgerisk.io.provenance import header_marked
from lgerisk.synth.config import SynthConfig
from lgerisk.synth.generator import generate_case
from lgerisk.synth.hazard import DEFAULT_HAZARD_VERSION

OUTCOME_COLUMNS = ("case_id", "time", "event", "age", "sex", "lvef", "diabetes")
"""The columns of ``outcomes.csv``, in order."""

SCAN_FOLDERS = ("images", "masks")
"""The folders of a cohort that hold one ``<case id>.nii.gz`` per case."""

COHORT_FILES = ("outcomes.csv", "ground_truth.csv", MARKER_FILE, "README.txt")
"""The files a cohort holds beside :data:`SCAN_FOLDERS`."""


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


def _case_id_of_file(path: Path) -> str | None:
    """The case id of a cohort scan ``<id>.nii.gz`` named like a generated case, else None."""
    name = path.name
    case_id = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else ""
    return case_id if is_synthetic_case_id(case_id) else None


def _written_by_synth(path: Path, marker: Mapping[str, object] | None) -> bool:
    """Whether the scan at ``path`` (in a cohort's ``images/`` or ``masks/``) is one the generator wrote.

    Its name is a generated case's id and its header carries the scan marker; in a cohort written before
    scans were marked (a cohort marker without ``scan_marker``) the name alone.
    """
    if _case_id_of_file(path) is None or not path.is_file():
        return False
    return header_marked(path) or (marker is not None and not marker.get("scan_marker"))


def is_synth_output(folder: str | Path) -> bool:
    """Whether ``folder`` is a cohort ``lgerisk synth`` wrote (or began writing and was stopped).

    True where it holds the generator's cohort marker (``synth.json``), or, a first run stopped before the
    marker was written, nothing but ``images/`` and ``masks/`` holding scans the generator wrote (their
    headers carry the scan marker). An empty or missing folder is not one.

    Example:
        >>> is_synth_output("sample_data")  # doctest: +SKIP
        True
    """
    out = Path(folder)
    if cohort_marker(out) is not None:
        return True
    if not out.is_dir():
        return False
    entries = [entry for entry in out.iterdir() if not entry.name.startswith(".")]
    if not entries or any(entry.name not in SCAN_FOLDERS or not entry.is_dir() for entry in entries):
        return False
    files = [path for entry in entries for path in entry.iterdir() if not path.name.startswith(".")]
    return bool(files) and all(_written_by_synth(path, None) for path in files)


def check_output_folder(out_dir: str | Path, force: bool = False) -> None:
    """Refuse (``InputError``) to write a cohort into ``out_dir`` where that would mix it with other files.

    A missing or empty folder, or one :func:`is_synth_output` recognises, is fine; any other folder is
    refused unless ``force`` is True (then the cohort is written over what is there, and nothing else is
    removed). A path that is a file is always refused.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: not a folder; give a new or empty folder for the synthetic cohort")
    if force or not out.exists() or not any(out.iterdir()) or is_synth_output(out):
        return
    raise InputError(
        f"{out}: the folder is not empty and is not a cohort that lgerisk synth wrote (it has no {MARKER_FILE}); "
        "give a new or empty folder, or pass force=True to write the synthetic cohort into it anyway",
        setting="force",
    )


def remove_stale_cases(out_dir: str | Path, case_ids: set[str], marker: Mapping[str, object] | None) -> list[Path]:
    """Remove the scans of an earlier run of the generator in ``out_dir`` whose cases are not in ``case_ids``.

    Only files the generator wrote (:func:`_written_by_synth`, judged with the earlier cohort marker
    ``marker``) in ``images/`` and ``masks/`` are removed; anything else is left as it is. Returns the
    paths removed.
    """
    removed: list[Path] = []
    for folder in SCAN_FOLDERS:
        scans = Path(out_dir) / folder
        if not scans.is_dir():
            continue
        for path in sorted(scans.iterdir()):
            if _case_id_of_file(path) not in case_ids and _written_by_synth(path, marker):
                path.unlink()
                removed.append(path)
    return removed


def generate_cohort(
    out_dir: str | Path,
    config: SynthConfig,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Write a synthetic cohort folder and return its ground-truth table.

    Writes ``images/<id>.nii.gz``, ``masks/<id>.nii.gz``, ``outcomes.csv``,
    ``ground_truth.csv``, ``synth.json`` and ``README.txt`` under ``out_dir`` (atomically, file by
    file); calls ``progress(1)`` after each case. The generator marks what it writes: every image and
    mask carries :data:`SCAN_MARKER` in its NIfTI header description, and ``synth.json`` (the cohort
    marker) names :data:`GENERATOR` and that scan marker (see :mod:`lgerisk.io.provenance`).

    ``out_dir`` must be new, empty, or a cohort the generator wrote (:func:`is_synth_output`); any other
    folder is refused with an ``InputError`` unless ``force`` is True (:func:`check_output_folder`). A
    rerun into its own cohort removes the scans of the earlier run's cases that the new cohort does not
    have (:func:`remove_stale_cases`), and never a file the generator did not write.

    Example:
        >>> table = generate_cohort("synth_out", SynthConfig(n_cases=4, small=True))  # doctest: +SKIP
        >>> list(table.columns[:2])  # doctest: +SKIP
        ['case_id', 'log_hazard']
    """
    out = Path(out_dir)
    check_output_folder(out, force)
    earlier = cohort_marker(out)
    own = is_synth_output(out)
    truths: list[dict[str, object]] = []
    outcomes: list[dict[str, object]] = []
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
    if own:
        remove_stale_cases(out, {str(row["case_id"]) for row in outcomes}, earlier)
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
