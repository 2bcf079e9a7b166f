"""Preprocess a whole cohort: the library function behind ``lgerisk preprocess``.

Output folder::

    OUT/preprocess.json              settings, their hash, lgerisk version
    OUT/cases/ID/image.nii.gz        normalised image (float32), LV-centred crop
    OUT/cases/ID/mask.nii.gz         labels: 1 blood pool, 2 remote myocardium, 3 scar core,
                                     4 no-reflow, 5 grey zone (uint8)
    OUT/cases/ID/qc.json             QC numbers (written last: the case's completion marker)
    OUT/cases/ID/scar_seg.dcm        with dicom_seg: scar and grey zone as a DICOM SEG over the case's
                                     DICOM series (see lgerisk.io.dicom_seg for what it keeps)
    OUT/cases.csv                    a row a case: a manifest (case_id,image,mask,time,event,...)
                                     plus the QC numbers; opens in pandas, feeds later commands
    OUT/errors.csv                   cases that failed and why (absent when none failed)
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.batch import BatchReport, Shard, collect_errors, read_record, run_batch
from lgerisk.io.atomic import write_csv, write_json
from lgerisk.io.cohort import Cohort, discover_cohort
from lgerisk.io.labels import parse_label_map
from lgerisk.io.layout import IMAGE_FILE, MASK_FILE, QC_FILE, case_dir, other_source
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.preprocess.pipeline import check_masks_fit, is_case_done, masks_from_names, resolve_scar_method, run_case
from lgerisk.reporting import SILENT, Reporter
from lgerisk.version import __version__

if TYPE_CHECKING:
    import pandas as pd

SETTINGS_FILE = "preprocess.json"
CASES_FILE = "cases.csv"


QC_COLUMNS = (
    "scar_method",
    "myocardium_volume_ml",
    "myocardium_mass_g",
    "blood_pool_volume_ml",
    "scar_volume_ml",
    "scar_percent",
    "noreflow_percent",
    "greyzone_percent",
    "scar_label_dice",
    "scar_confidence",
    "scar_flags",
    "remote_mean",
    "remote_sd",
    "blood_pool_mean",
    "slice_count",
    "slice_spacing_mm",
    "slices_with_myocardium",
    "myocardium_in_crop_fraction",
    "warnings",
    "settings_hash",
)


def preprocess_cohort(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: PreprocessConfig,
    jobs: int = 1,
    shard: Shard = Shard(),
    dicom_seg: bool = False,
    reporter: Reporter = SILENT,
) -> tuple[BatchReport, pd.DataFrame]:
    """Preprocess every case of ``data`` into ``out``; returns the batch report and the cases table.

    Cases already done with the same inputs and settings are skipped, so a rerun resumes. The label map
    is checked against the cohort's first masks before any work (label images by their labels, DICOM
    SEG/RTSTRUCT masks by their structure names), and a map shown to leave labels or names unmapped
    stops the batch (``InputError``) rather than failing case after case. ``dicom_seg``: also write each
    DICOM-series case's scar and grey zone as ``cases/ID/scar_seg.dcm``. ``reporter``: progress bar,
    error wording (see ``lgerisk.reporting``).

    Example:
        >>> report, table = preprocess_cohort("sample_data", "work/prep", PreprocessConfig())  # doctest: +SKIP
        >>> table[["case_id", "scar_percent"]].head()                                          # doctest: +SKIP
    """
    from lgerisk.io.dicom_seg import check_seg_sources

    label_map = parse_label_map(config.labels)
    resolve_scar_method(config.scar_method, label_map, masks_from_names(label_map))  # usage errors before any work
    cohort = discover_cohort(data)
    if dicom_seg:
        check_seg_sources([case.image for case in cohort.cases], str(data))
    watch = check_masks_fit([case.mask for case in cohort.cases], config, str(data))
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    write_json(
        out_path / SETTINGS_FILE,
        {"settings": config.to_dict(), "settings_hash": config.settings_hash(), "lgerisk_version": __version__},
    )
    selected = shard.select(cohort.cases)
    report = run_batch(
        selected,
        partial(run_case, out=out_path, config=config, dicom_seg=dicom_seg),
        partial(is_case_done, out=out_path, config=config, dicom_seg=dicom_seg),
        out_path,
        jobs=jobs,
        description="preprocess",
        reporter=reporter,
        keep_results=False,  # each case's result is on disk
        stop_if=watch,
    )
    table = write_cases_table(cohort, out_path, config)
    collect_errors(out_path)
    return report, table


def write_cases_table(cohort: Cohort, out: Path, config: PreprocessConfig) -> pd.DataFrame:
    """Gather the QC of every finished case of ``cohort`` (all shards) into ``out/cases.csv``."""
    import pandas as pd

    rows = []
    for case in cohort.cases:
        qc = read_record(case_dir(out, case.case_id) / QC_FILE, config.settings_hash())
        if qc is None or other_source(qc, case) is not None:  # not done, or another scan under the same id
            continue
        row: dict[str, object] = {
            "case_id": case.case_id,
            "image": f"cases/{case.case_id}/{IMAGE_FILE}",
            "mask": f"cases/{case.case_id}/{MASK_FILE}",
            "time": case.time,
            "event": case.event,
        }
        row.update(case.covariates)
        for key in QC_COLUMNS:
            value = qc.get(key)
            row[key] = "; ".join(cast("list[str]", value)) if isinstance(value, list) else value  # flags, warnings
        rows.append(row)
    table = pd.DataFrame(rows)
    if not rows:
        (out / CASES_FILE).unlink(missing_ok=True)
    else:
        if table["time"].isna().all():
            table = table.drop(columns=["time", "event"])
        else:
            table["event"] = table["event"].astype("Int64")
        write_csv(out / CASES_FILE, table)
    return table
