"""Getting a cohort ready for training: preprocessed cases and their radiomics, cached and checked."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.errors import InputError
from lgerisk.io.cohort import Case
from lgerisk.preprocess.config import PreprocessConfig
from lgerisk.reporting import SILENT, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.cards import PreprocessingSection


@dataclass(frozen=True)
class PreparedData:
    """Preprocessed cases with a radiomics row each (cases without one are left out, and listed)."""

    cases: tuple[Case, ...]
    features: pd.DataFrame  # indexed by case_id
    preprocess_settings: PreprocessingSection  # the cohort's preprocess.json (empty: none)
    excluded: dict[str, str]
    source: Path  # the preprocessed cohort (folder or cases.csv)
    features_path: Path

    @property
    def case_ids(self) -> list[str]:
        """Case ids in order."""
        return [case.case_id for case in self.cases]

    def data_hash(self) -> str:
        """SHA-256 over the case ids and the hashes of their preprocessed files (what a model saw)."""
        from lgerisk.io.layout import source_hash

        digest = hashlib.sha256()
        for case in self.cases:
            digest.update(f"{case.case_id}:{source_hash(case.image)}:{source_hash(case.mask)};".encode())
        return digest.hexdigest()


def read_feature_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A feature table (``extract-radiomics`` output) indexed by case_id."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: feature table does not exist.")
    try:
        table = pd.read_csv(path, dtype={"case_id": str}, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV feature table ({str(exc).splitlines()[0]}).") from exc
    if "case_id" not in table.columns:
        raise InputError(f"{path}: feature table has no case_id column.")
    if table["case_id"].duplicated().any():
        raise InputError(
            f"{path}: case id {table['case_id'][table['case_id'].duplicated()].iloc[0]!r} appears more than once."
        )
    return table.set_index("case_id", drop=False)


def prepare_data(
    data: str | os.PathLike[str],
    cache: Path,
    labels: str = "emidec",
    features: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    reporter: Reporter = SILENT,
    only: list[str] | None = None,
    preprocess: PreprocessConfig | None = None,
) -> PreparedData:
    """Preprocess ``data`` (unless it already is) and extract its radiomics (unless ``features`` is
    given), both cached under ``cache``; returns the usable cases and their feature rows.

    A given feature table must hold a row for every usable case (``InputError`` otherwise). ``only``
    keeps just those case ids (other DDP ranks take rank 0's list of usable cases). ``preprocess`` gives
    the preprocessing settings of a raw cohort (default: the defaults with ``labels``).
    """
    from lgerisk.radiomics.run import extract_cohort, preprocessed_cohort

    config = preprocess if preprocess is not None else PreprocessConfig(labels=labels)
    selection = preprocessed_cohort(data, cache / "preprocessed", config, jobs, reporter)
    excluded = dict(selection.failed)
    cases = selection.cases if only is None else tuple(c for c in selection.cases if c.case_id in set(only))
    if not cases:
        raise InputError(
            f"{data}: no usable cases (every case failed preprocessing; see {cache / 'preprocessed' / 'errors.csv'})."
        )
    if features is not None:
        table = read_feature_table(features)
        missing = [case.case_id for case in cases if case.case_id not in table.index]
        if missing:
            raise InputError(
                f"{features}: feature table lacks {len(missing)} of the {len(cases)} cases "
                f"(e.g. {missing[0]!r}); extract it from the same data."
            )
    else:
        report, table, _ = extract_cohort(selection.source, cache / "radiomics.csv", jobs=jobs, reporter=reporter)
        excluded.update(report.failed)
        table = table.set_index("case_id", drop=False) if len(table) else table
    usable = tuple(case for case in cases if case.case_id in getattr(table, "index", ()))
    if not usable:
        raise InputError(f"{data}: no usable cases (no case has a radiomics row).")
    rows = table.loc[[c.case_id for c in usable]]
    features_path = Path(features) if features is not None else cache / "radiomics.csv"
    rows.attrs["source"] = str(features_path)  # named in errors
    return PreparedData(
        cases=usable,
        features=rows,
        preprocess_settings=_preprocess_settings(selection.source),
        excluded=excluded,
        source=selection.source,
        features_path=features_path,
    )


def _preprocess_settings(source: Path) -> PreprocessingSection:
    folder = source if source.is_dir() else source.parent
    path = folder / "preprocess.json"
    return cast("PreprocessingSection", json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}
