"""Cohort discovery: a folder or a CSV manifest -> a list of cases with optional outcomes.

Layouts understood (see docs/cohorts.md, "Layouts"):

* a CSV manifest with ``case_id,image,mask`` (+ optional ``time,event`` and covariates);
  relative paths are relative to the CSV;
* ``images/ID.<ext>`` + ``masks/ID.<ext>`` (or ``labels/``); ``images/ID/`` may be a DICOM folder;
* EMIDEC's ``ID/Images/ID.nii.gz`` + ``ID/Contours/ID.nii.gz``;
* one DICOM series per sub-folder ``ID/`` with masks in ``masks/ID.<ext>``;
* a ``lgerisk preprocess`` output folder (``preprocess.json`` + ``cases.csv``).

A mask may also be a DICOM SEG or RTSTRUCT (``lgerisk.io.dicom_masks``): ``masks/ID.dcm``, a folder
``masks/ID/`` holding one, or, for a DICOM series folder without a mask in ``masks/``, the one SEG or
RTSTRUCT file inside the series folder itself.

Outcomes come from ``outcomes.csv`` beside the folder's contents (or beside the manifest),
or from the manifest's own ``time``/``event`` columns.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, SupportsFloat, cast

from lgerisk.errors import CaseError, InputError
from lgerisk.io.scans import is_scan_file, scan_stem

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from lgerisk.types import JSONScalar

CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
"""A case id is a safe file name: letters, digits, '-', '_', '.'; never a path."""

MANIFEST_COLUMNS = ("case_id", "image", "mask")
OUTCOME_COLUMNS = ("time", "event")


@dataclass(frozen=True)
class Case:
    """One scan of a cohort: where its image and mask are, and its outcome if known."""

    case_id: str
    image: Path
    mask: Path | None
    time: float | None = None
    event: int | None = None
    covariates: dict[str, JSONScalar] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Cohort:
    """The cases of a cohort, the layout they were found in, and where they came from."""

    cases: tuple[Case, ...]
    layout: str
    source: Path

    @property
    def has_outcomes(self) -> bool:
        """Whether any case has a follow-up time."""
        return any(case.time is not None for case in self.cases)

    @property
    def synthetic(self) -> bool:
        """Whether the cohort is one ``lgerisk synth`` wrote (its folder carries the generator's cohort marker)."""
        from lgerisk.io.markers import cohort_marker

        folder = self.source if self.source.is_dir() else self.source.parent
        return cohort_marker(folder) is not None


def check_case_id(case_id: str, where: str) -> str:
    """Return ``case_id`` if it is a safe file name, else raise ``InputError`` naming ``where``."""
    if not isinstance(case_id, str) or not CASE_ID_PATTERN.fullmatch(case_id) or case_id in {".", ".."}:
        raise InputError(
            f"{where}: case id {case_id!r} is not a safe file name (letters, digits, '-', '_', "
            "'.'; no paths or spaces)."
        )
    return case_id


def discover_cohort(data: str | os.PathLike[str]) -> Cohort:
    """Find the cases under ``data`` (a folder or a CSV manifest).

    Example:
        >>> cohort = discover_cohort("sample_data")          # doctest: +SKIP
        >>> cohort.layout, len(cohort.cases)                  # doctest: +SKIP
        ('images+masks', 32)
    """
    path = Path(data)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder.")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InputError(
                f"data={str(path)!r} must be a cohort folder or a CSV manifest, not a single file.", setting="data"
            )
        return _nonempty(_read_manifest(path), path)
    if (path / "preprocess.json").is_file() and (path / "cases.csv").is_file():
        cases = _nonempty(_read_manifest(path / "cases.csv"), path / "cases.csv").cases
        return Cohort(cases=cases, layout="preprocessed", source=path)
    for layout, finder in (
        ("images+masks", _find_images_masks),
        ("emidec", _find_emidec),
        ("dicom", _find_dicom_folders),
    ):
        found = finder(path)
        if found:
            found = _attach_outcomes(found, path / "outcomes.csv")
            _check_unique(found, path)
            return Cohort(cases=tuple(sorted(found, key=lambda c: c.case_id)), layout=layout, source=path)
    raise InputError(
        f"no cases found in {path}; expected images/ + masks/ (or labels/), EMIDEC's ID/Images + "
        "ID/Contours, DICOM folders with masks/, or a CSV manifest (see docs/cohorts.md)."
    )


def _nonempty(cohort: Cohort, table: Path) -> Cohort:
    """``cohort``, unless its table has a header but no rows (``InputError``)."""
    if not cohort.cases:
        raise InputError(f"no cases found in {table}: it has a header but no rows.")
    return cohort


def mask_stem(path: Path) -> str:
    """File name of a mask without its suffix: a scan suffix, or ``.dcm`` (a DICOM SEG/RTSTRUCT)."""
    stem = scan_stem(path)
    return stem[:-4] if stem == path.name and stem.lower().endswith(".dcm") else stem


def _mask_for(folder: Path, case_id: str, series: Path | None = None) -> Path | None:
    """The mask of ``case_id``: ``masks/ID.<ext>`` (a label image or ``.dcm`` SEG/RTSTRUCT) or a folder
    ``masks/ID/`` (also under ``labels/``); else, for a DICOM ``series`` folder, the SEG or RTSTRUCT in it."""
    for name in ("masks", "labels"):
        if not (folder / name).is_dir():
            continue
        candidates = sorted(p for p in (folder / name).glob(f"{case_id}.*") if mask_stem(p) == case_id)
        if candidates:
            return candidates[0]
        if (folder / name / case_id).is_dir():
            return folder / name / case_id
    if series is not None and series.is_dir():
        from lgerisk.io.formats import dicom_mask_file

        try:
            return dicom_mask_file(series)
        except CaseError:
            return series  # several SEG/RTSTRUCT objects in it: reading the mask says so, for this case
    return None


def _find_images_masks(folder: Path) -> list[Case]:
    images = folder / "images"
    if not images.is_dir():
        return []
    cases = []
    for entry in sorted(images.iterdir()):
        if entry.name.startswith("."):
            continue
        if is_scan_file(entry) or entry.is_dir():
            case_id = check_case_id(scan_stem(entry), str(entry))
            cases.append(Case(case_id, entry, _mask_for(folder, case_id, entry if entry.is_dir() else None)))
    return cases


def _find_emidec(folder: Path) -> list[Case]:
    cases = []
    for entry in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "Images").is_dir()):
        images = sorted(p for p in (entry / "Images").iterdir() if is_scan_file(p))
        if not images:
            continue
        case_id = check_case_id(entry.name, str(entry))
        masks = (
            sorted(p for p in (entry / "Contours").glob("*") if is_scan_file(p))
            if (entry / "Contours").is_dir()
            else []
        )
        cases.append(Case(case_id, images[0], masks[0] if masks else None))
    return cases


def _looks_dicom(folder: Path) -> bool:
    for item in folder.iterdir():
        if item.is_file():
            if item.suffix.lower() in {".dcm", ".ima"}:
                return True
            try:
                with item.open("rb") as handle:
                    handle.seek(128)
                    if handle.read(4) == b"DICM":
                        return True
            except OSError:
                continue
    return False


def _find_dicom_folders(folder: Path) -> list[Case]:
    cases = []
    skip = {"masks", "labels", "images"}
    for entry in sorted(
        p for p in folder.iterdir() if p.is_dir() and p.name not in skip and not p.name.startswith(".")
    ):
        if _looks_dicom(entry):
            case_id = check_case_id(entry.name, str(entry))
            cases.append(Case(case_id, entry, _mask_for(folder, case_id, entry)))
    return cases


def _check_unique(cases: list[Case], where: Path) -> None:
    seen: set[str] = set()
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"{where}: case id {case.case_id!r} appears more than once.")
        seen.add(case.case_id)


def _separator_hint(path: Path) -> str:
    """A clause saying the CSV at ``path`` looks separated by semicolons or tabs (as Excel saves it in some
    locales), for a message about its columns; ``""`` when its first line holds a comma, or neither."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline()
    except OSError:
        return ""
    if "," in header:
        return ""
    for separator, name in ((";", "semicolon"), ("\t", "tab")):
        if separator in header:
            return f"; the file looks {name}-separated: save it as comma-separated CSV"
    return ""


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV at ``path`` as a table (a UTF-8 byte-order mark, as Excel writes, is dropped)."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype={"case_id": str}, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
            "save it as CSV UTF-8."
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable CSV table ({reason}{_separator_hint(path)}).") from exc


def read_outcomes(path: Path) -> dict[str, tuple[float | None, int | None, dict[str, JSONScalar]]]:
    """Read ``case_id,time,event[,covariates...]`` -> {case_id: (time, event, covariates)}, validated."""
    table = _read_csv(path)
    return _outcome_rows(table, path)


def _outcome_rows(table: pd.DataFrame, path: Path) -> dict[str, tuple[float | None, int | None, dict[str, JSONScalar]]]:
    import pandas as pd

    if "case_id" not in table.columns:
        raise InputError(f"{path}: outcomes need a 'case_id' column{_separator_hint(path)}.")
    has_time, has_event = "time" in table.columns, "event" in table.columns
    if has_time != has_event:
        raise InputError(f"{path}: outcomes need both 'time' and 'event' columns, or neither.")
    duplicated = table["case_id"][table["case_id"].duplicated()]
    if len(duplicated):
        raise InputError(f"{path}: case id {duplicated.iloc[0]!r} appears more than once.")
    rows: dict[str, tuple[float | None, int | None, dict[str, JSONScalar]]] = {}
    skip = set(MANIFEST_COLUMNS) | set(OUTCOME_COLUMNS)
    for index, row in table.iterrows():
        case_id = check_case_id(row["case_id"], f"{path} row {index + 2}")
        time = event = None
        if has_time and not (pd.isna(row["time"]) and pd.isna(row["event"])):
            time, event = _check_outcome(row["time"], row["event"], path, case_id)
        covariates = {
            k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v))
            for k, v in row.items()
            if k not in skip
        }
        rows[case_id] = (time, event, covariates)
    return rows


def _check_outcome(time: object, event: object, path: Path, case_id: str) -> tuple[float, int]:
    # time and event: table cells of any kind; what float() refuses is reported
    try:
        time_value = float(cast("SupportsFloat", time))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: case {case_id!r} has time {time!r}, which is not a number.") from exc
    if not math.isfinite(time_value) or time_value < 0:
        raise InputError(f"{path}: case {case_id!r} has time {time!r}; follow-up times must be finite and >= 0.")
    try:
        event_value = float(cast("SupportsFloat", event))
    except (TypeError, ValueError):
        event_value = float("nan")
    if event_value not in (0.0, 1.0):
        raise InputError(f"{path}: case {case_id!r} has event {event!r}; events must be 0 (censored) or 1.")
    return time_value, int(event_value)


def _attach_outcomes(cases: list[Case], outcomes_path: Path) -> list[Case]:
    if not outcomes_path.is_file():
        return cases
    rows = read_outcomes(outcomes_path)
    attached = []
    for case in cases:
        time, event, covariates = rows.get(case.case_id, (case.time, case.event, case.covariates))
        attached.append(Case(case.case_id, case.image, case.mask, time, event, covariates))
    return attached


def _read_manifest(path: Path) -> Cohort:
    import pandas as pd

    table = _read_csv(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: manifest lacks column(s) {', '.join(missing)}; it needs "
            f"{', '.join(MANIFEST_COLUMNS)} (and optionally time, event, covariates){_separator_hint(path)}."
        )
    outcomes = _outcome_rows(table.drop(columns=["image", "mask"]), path)
    base = path.parent
    cases = []
    for index, row in table.iterrows():
        case_id = check_case_id(row["case_id"], f"{path} row {index + 2}")
        if pd.isna(row["image"]):
            raise InputError(f"{path}: case {case_id!r} has no image path.")
        image = (base / str(row["image"])) if not Path(str(row["image"])).is_absolute() else Path(str(row["image"]))
        mask = None
        if not pd.isna(row["mask"]):
            mask = (base / str(row["mask"])) if not Path(str(row["mask"])).is_absolute() else Path(str(row["mask"]))
        time, event, covariates = outcomes[case_id]
        cases.append(Case(case_id, image, mask, time, event, covariates))
    cases = _attach_outcomes(cases, base / "outcomes.csv") if not {"time", "event"} <= set(table.columns) else cases
    _check_unique(cases, path)
    preprocessed = path.name == "cases.csv" and (path.parent / "preprocess.json").is_file()
    return Cohort(cases=tuple(cases), layout="preprocessed" if preprocessed else "manifest", source=path)
