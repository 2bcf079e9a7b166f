"""Extract a cohort's feature table: the library function behind ``lgerisk extract-radiomics``.

Given ``--out work/radiomics.csv``::

    work/radiomics.csv               the feature table (a row a case; see docs/commands.md, "Feature table")
    work/radiomics.errors.csv        cases that failed and why (absent when none failed)
    work/radiomics.stability.csv     per-feature ICCs (with --stability)
    work/radiomics.parts/            one JSON a case (resume cache; safe to delete)
    work/radiomics.parts/preprocessed/   the preprocessing of a raw cohort (same code as preprocess)
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.batch import BatchReport, Shard, collect_errors, read_record, run_batch
from lgerisk.io.atomic import write_csv, write_json
from lgerisk.io.cohort import Case, discover_cohort
from lgerisk.io.layout import inputs_unchanged, source_hash
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.radiomics.settings import load_params, params_hash
from lgerisk.reporting import SILENT, Reporter

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def parts_dir(out_csv: Path) -> Path:
    """The per-case cache folder beside the feature table."""
    return out_csv.with_name(out_csv.name.removesuffix(".csv") + ".parts")


def sibling(out_csv: Path, kind: str) -> Path:
    """``work/radiomics.csv`` -> ``work/radiomics.<kind>.csv``."""
    return out_csv.with_name(out_csv.name.removesuffix(".csv") + f".{kind}.csv")


@dataclass(frozen=True)
class PreprocessedSelection:
    """The shard's preprocessed cases, every case id of the cohort (all shards), and the shard's failures."""

    cases: tuple[Case, ...]
    all_ids: tuple[str, ...]
    failed: dict[str, str]
    source: Path
    raw: bool


def preprocessed_cohort(
    data: str | os.PathLike[str],
    cache: Path,
    config: PreprocessConfig,
    jobs: int,
    reporter: Reporter = SILENT,
    shard: Shard = Shard(),
) -> PreprocessedSelection:
    """The cases of ``shard`` of ``data``, preprocessed: as-is when ``data`` is a preprocess output,
    else preprocessed into ``cache`` first (resumable; only the shard's cases, so SLURM array tasks
    never redo each other's). A raw cohort's cases are found by their own QC records, never through the
    ``cases.csv`` that concurrent shards rewrite."""
    cohort = discover_cohort(data)
    selected = shard.select(cohort.cases)
    all_ids = tuple(case.case_id for case in cohort.cases)
    if cohort.layout == "preprocessed":
        return PreprocessedSelection(tuple(selected), all_ids, {}, cohort.source, raw=False)
    from lgerisk.io.layout import IMAGE_FILE, MASK_FILE, QC_FILE, case_dir
    from lgerisk.preprocess.run import preprocess_cohort

    report, _ = preprocess_cohort(data, cache, config, jobs=jobs, shard=shard, reporter=reporter)
    done = []
    for case in selected:
        if case.case_id in report.failed:  # e.g. a second scan under an id another scan holds: not its files
            continue
        folder = case_dir(cache, case.case_id)
        if read_record(folder / QC_FILE, config.settings_hash()) is not None:
            done.append(
                Case(case.case_id, folder / IMAGE_FILE, folder / MASK_FILE, case.time, case.event, case.covariates)
            )
    return PreprocessedSelection(tuple(done), all_ids, report.failed, cache, raw=True)


def _json_safe(row: Mapping[str, object]) -> dict[str, object]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


def extract_case(
    case: Case,
    parts: Path,
    params: Mapping[str, object],
    rois: tuple[str, ...],
    settings: str,
    stability: bool = False,
    n_random: int = 2,
    seed: int = 0,
) -> dict[str, object]:
    """Extract one case and cache its row (and its perturbation rows with ``stability``)."""
    from lgerisk.radiomics.extract import feature_row, read_case

    assert case.mask is not None  # a preprocessed case always has its mask (preprocess writes it)
    (parts / "cases" / f"{case.case_id}.json").unlink(missing_ok=True)  # no stale row if this attempt fails
    row = feature_row(case.case_id, case.image, case.mask, params, rois, settings)
    record: dict[str, object] = {
        "settings_hash": settings,
        "image_sha256": source_hash(case.image),
        "mask_sha256": source_hash(case.mask),
        "row": _json_safe(row),
    }
    if stability:
        from lgerisk.radiomics.stability import perturbation_rows

        image, labels = read_case(case.image, case.mask)
        rows = perturbation_rows(image, labels, params, rois, n_random=n_random, seed=case_seed(seed, case.case_id))
        record["perturbations"] = {name: _json_safe(values) for name, values in rows.items()}
        record["perturbation_settings"] = {"random_contours": n_random, "seed": seed}
    write_json(parts / "cases" / f"{case.case_id}.json", record, sort_keys=False)  # keeps the column order
    return record


def case_seed(seed: int, case_id: str) -> int:
    """A per-case seed for contour randomisation (every case gets its own random fields)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{case_id}".encode()).digest()[:8], "little")


def is_extracted(case: Case, parts: Path, settings: str, stability: bool, n_random: int = 2, seed: int = 0) -> bool:
    """Whether the cache holds this case from the same files and settings (and, with ``stability``,
    perturbations made with the same number of contour randomisations and seed)."""
    record = read_record(parts / "cases" / f"{case.case_id}.json", settings)
    if record is None or not inputs_unchanged(record, case):
        return False
    return not stability or record.get("perturbation_settings") == {"random_contours": n_random, "seed": seed}


def extract_cohort(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    params_path: str | None = None,
    image_types: tuple[str, ...] | None = None,
    rois: tuple[str, ...] = ("myocardium", "scar", "greyzone"),
    jobs: int = 1,
    shard: Shard = Shard(),
    stability: bool = False,
    n_random: int = 2,
    seed: int = 0,
    preprocess_config: PreprocessConfig = PreprocessConfig(),
    reporter: Reporter = SILENT,
) -> tuple[BatchReport, pd.DataFrame, pd.DataFrame | None]:
    """Extract the feature table of ``data`` into ``out`` (CSV); returns report, table, stability table.

    Example:
        >>> report, table, _ = extract_cohort("work/prep", "work/radiomics.csv")   # doctest: +SKIP
    """
    params = load_params(params_path, image_types)
    settings = params_hash(params, rois)
    out_csv = Path(out)
    parts = parts_dir(out_csv)  # created by the first write, once the cohort was found and checked
    selection = preprocessed_cohort(data, parts / "preprocessed", preprocess_config, jobs, reporter, shard)
    write_json(parts / "settings.json", {"params": params, "rois": list(rois), "settings_hash": settings})
    report = run_batch(
        selection.cases,
        partial(
            extract_case,
            parts=parts,
            params=params,
            rois=rois,
            settings=settings,
            stability=stability,
            n_random=n_random,
            seed=seed,
        ),
        partial(is_extracted, parts=parts, settings=settings, stability=stability, n_random=n_random, seed=seed),
        parts,
        jobs=jobs,
        description="radiomics",
        reporter=reporter,
        keep_results=False,  # each case's result is on disk
    )
    report.failed.update(selection.failed)
    perturbation_settings = {"random_contours": n_random, "seed": seed} if stability else None
    table, stability_frame = assemble(selection.all_ids, parts, settings, out_csv, perturbation_settings)
    errors = collect_errors(parts)
    pre_errors = collect_errors(parts / "preprocessed") if selection.raw else None  # every shard's failures
    _write_errors(out_csv, errors, pre_errors)
    return report, table, stability_frame


def _write_errors(out_csv: Path, *tables: pd.DataFrame | None) -> None:
    import pandas as pd

    frames = [t for t in tables if t is not None and len(t)]
    path = sibling(out_csv, "errors")
    if frames:
        write_csv(path, pd.concat(frames, ignore_index=True))
    else:
        path.unlink(missing_ok=True)


ASSEMBLY_CHUNK = 256
"""Feature rows gathered as dictionaries before they become a DataFrame chunk (bounded memory)."""


def assemble(
    case_ids: tuple[str, ...], parts: Path, settings: str, out_csv: Path, perturbation_settings: dict[str, int] | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Gather every cached row of ``case_ids`` (all shards) into the feature table and, when
    ``perturbation_settings`` is given, the perturbation rows made with those settings into the
    stability table. A table with no rows is removed rather than left stale."""
    import pandas as pd

    perturbations: dict[str, Mapping[str, Mapping[str, object]]]  # {case_id: {perturbation: {column: value}}}
    chunks, rows, perturbations = [], [], {}
    for case_id in case_ids:
        record = read_record(parts / "cases" / f"{case_id}.json", settings)
        if record is None:
            continue
        rows.append(record["row"])
        if len(rows) == ASSEMBLY_CHUNK:  # rows as dicts take many times their values' memory: keep a chunk
            chunks.append(pd.DataFrame(rows))
            rows = []
        if perturbation_settings is not None and record.get("perturbation_settings") == perturbation_settings:
            perturbations[case_id] = cast("Mapping[str, Mapping[str, object]]", record["perturbations"])
    if rows or not chunks:
        chunks.append(pd.DataFrame(rows))
    table = chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True, sort=False)
    if len(table):
        write_csv(out_csv, table)
    else:
        out_csv.unlink(missing_ok=True)
    stability_frame = None
    if perturbations:
        from lgerisk.radiomics.stability import stability_table

        stability_frame = stability_table(perturbations)
        write_csv(sibling(out_csv, "stability"), stability_frame)
    elif perturbation_settings is not None:
        sibling(out_csv, "stability").unlink(missing_ok=True)
    return table, stability_frame
