"""The public Python API: what the commands do, for a notebook or a script.

Every function here is what the command of the same name runs, with the same files written and the
same errors (:class:`~lgerisk.errors.InputError` for bad input, a ``ValueError``), minus the
progress bars (``progress=True`` shows them). Results are dataclasses and pandas DataFrames.

    read_cohort(data)                               -> Cohort (cases, layout)
    preprocess_case(image, mask)                    -> QCRecord (scar %, grey zone %, mass, warnings, ...)
    preprocess_cohort(data, out)                    -> BatchResult (cases.csv as a DataFrame, errors)
    extract_features(data, out_csv)                 -> BatchResult (features.csv as a DataFrame, errors)
    pretrain(data, out, PretrainConfig(...))        -> PretrainResult
    finetune(data, out, FinetuneConfig(...), encoder=...) -> FinetuneResult (comparison table)
    load_model(run)                                 -> RiskPredictor
    predict_scan(model, image, mask)                -> Prediction
    predict_cohort(model, data)                     -> BatchResult (predictions, failed cases)
    explain_scan(model, image, out, mask)           -> Explanation

Example (sample_data ships with the repository; every number it gives is SYNTHETIC):
    >>> import lgerisk
    >>> cohort = lgerisk.read_cohort("sample_data")
    >>> cohort.layout, len(cohort.cases)
    ('images+masks', 32)
    >>> qc = lgerisk.preprocess_case(cohort.cases[0].image, cohort.cases[0].mask)
    >>> qc.case_id, qc.scar_method, 0 < qc.scar_percent < 100
    ('synth-0000', 'label', True)

The whole chain on a cohort is in ``examples/python_api.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lgerisk.reporting import Reporter

if TYPE_CHECKING:
    import pandas as pd

    from lgerisk.inference import RiskPredictor
    from lgerisk.io.cohort import Cohort
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.training.finetune import FinetuneResult
    from lgerisk.training.finetune_config import FinetuneConfig
    from lgerisk.training.pretrain import PretrainConfig, PretrainResult

__all__ = [
    "BatchResult",
    "Explanation",
    "Prediction",
    "QCRecord",
    "explain_scan",
    "extract_features",
    "finetune",
    "load_model",
    "predict_cohort",
    "predict_scan",
    "preprocess_case",
    "preprocess_cohort",
    "pretrain",
    "read_cohort",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class QCRecord:
    """What preprocessing measured on one scan (``qc.json`` of a preprocessed case).

    Attributes:
        case_id: the case id (never a path).
        scar_method: how scar was found (``label``: the mask's scar labels; else a derivation, e.g. ``fwhm``).
        scar_percent, greyzone_percent, noreflow_percent: share of the LV myocardium, in %.
        myocardium_mass_g, myocardium_volume_ml, scar_volume_ml: LV myocardium and scar size.
        synthetic: the scan comes from lgerisk's synthetic generator (its own marker).
        warnings: what a reader should know (e.g. myocardium labelled on few slices).
        values: every QC field, as written to ``qc.json`` (remote reference, normalisation, geometry, a derived
            scar's ``scar_confidence`` and ``scar_flags``, ...).
    """

    case_id: str
    scar_method: str
    scar_percent: float
    greyzone_percent: float
    noreflow_percent: float
    myocardium_mass_g: float
    myocardium_volume_ml: float
    scar_volume_ml: float
    synthetic: bool
    warnings: tuple[str, ...]
    values: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_qc(cls, qc: dict[str, Any]) -> QCRecord:
        """From a ``qc.json`` dict."""
        return cls(
            case_id=str(qc["case_id"]),
            scar_method=str(qc["scar_method"]),
            scar_percent=float(qc["scar_percent"]),
            greyzone_percent=float(qc["greyzone_percent"]),
            noreflow_percent=float(qc.get("noreflow_percent") or 0.0),
            myocardium_mass_g=float(qc["myocardium_mass_g"]),
            myocardium_volume_ml=float(qc["myocardium_volume_ml"]),
            scar_volume_ml=float(qc["scar_volume_ml"]),
            synthetic=bool(qc.get("synthetic")),
            warnings=tuple(str(w) for w in qc.get("warnings") or ()),
            values=dict(qc),
        )


@dataclass(frozen=True)
class Prediction:
    """One scan's prediction (a row of ``predictions.csv``; see ``docs/commands.md``, "lgerisk predict").

    Attributes:
        risk_score: log relative hazard (always given, also when not reliable).
        risk_group: ``low``/``intermediate``/``high`` (training tertiles) or ``out of range``.
        survival: survival probability by horizon (years in the synthetic cohorts).
        reliable: false when the scan lies outside what the model was trained on, or its derived scar has low
            ``scar_confidence`` (check it); ``unreliable_reasons`` say why.
        values: the whole record as ``predict`` writes it.
    """

    case_id: str
    risk_score: float
    risk_group: str
    survival: dict[float, float]
    scar_percent: float | None
    greyzone_percent: float | None
    scar_method: str | None
    model_method: str | None
    model_trained_on_synthetic: bool
    scan_synthetic: bool
    reliable: bool
    unreliable_reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    values: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prediction:
        """From a prediction record (a dict as ``predict`` writes it to JSON)."""

        def number(key: str) -> float | None:
            value = record.get(key)
            return None if value is None else float(value)

        survival = {float(k.split("_", 1)[1]): float(v) for k, v in record.items() if k.startswith("survival_")}
        return cls(
            case_id=str(record["case_id"]),
            risk_score=float(record["risk_score"]),
            risk_group=str(record["risk_group"]),
            survival=survival,
            scar_percent=number("scar_percent"),
            greyzone_percent=number("greyzone_percent"),
            scar_method=None if record.get("scar_method") is None else str(record["scar_method"]),
            model_method=None if record.get("model_method") is None else str(record["model_method"]),
            model_trained_on_synthetic=bool(record.get("model_trained_on_synthetic")),
            scan_synthetic=bool(record.get("scan_synthetic")),
            reliable=bool(record.get("reliable")),
            unreliable_reasons=tuple(record.get("unreliable_reasons") or ()),
            warnings=tuple(record.get("warnings") or ()),
            values=dict(record),
        )


@dataclass(frozen=True)
class BatchResult:
    """A batch command's result: its table (one row per finished case), the failed cases, where it wrote."""

    out: Path
    table: pd.DataFrame
    errors: pd.DataFrame
    skipped: int = 0
    """Cases already done by an earlier run (resumed, not redone)."""


@dataclass(frozen=True)
class Explanation:
    """One explained scan: its prediction, the radiomics features most aligned with the model's risk (with
    this scan's value and percentile in the training cohort), and the files written (report.html, ...)."""

    prediction: Prediction
    out: Path
    features: pd.DataFrame
    files: dict[str, Path]


def _reporter(progress: bool) -> Reporter:
    """Bars when ``progress``; never notes (a notebook reads the returned results)."""
    return Reporter(progress=progress)


def read_cohort(data: PathLike) -> Cohort:
    """The cases of a cohort folder, a manifest CSV or a DICOM folder tree (layouts: ``docs/cohorts.md``)."""
    from lgerisk.io.cohort import discover_cohort

    return discover_cohort(data)


def preprocess_case(
    image: PathLike,
    mask: PathLike | None = None,
    config: PreprocessConfig | None = None,
    out: PathLike | None = None,
    case_id: str | None = None,
) -> QCRecord:
    """Preprocess one scan (NIfTI, NRRD, MHA or a DICOM series folder) with its mask (found beside the scan
    when not given); with ``out``, also write the case folder ``out/cases/ID/`` as ``preprocess`` does.

    ``case_id``: the id to give the case (default: from the file name, as ``predict`` does). The label map is
    checked on this one mask; :func:`preprocess_cohort` also checks it across the cohort first."""
    from dataclasses import replace

    from lgerisk.io.cohort import check_case_id
    from lgerisk.predict.masks import scan_case
    from lgerisk.preprocess import pipeline
    from lgerisk.preprocess.config import PreprocessConfig

    case = scan_case(image, mask)
    if case_id is not None:
        case = replace(case, case_id=check_case_id(case_id, str(image)))
    result = pipeline.preprocess_case(case, config or PreprocessConfig())
    if out is not None:
        pipeline.write_case(result, Path(out))
    return QCRecord.from_qc(result.qc)


def preprocess_cohort(
    data: PathLike, out: PathLike, config: PreprocessConfig | None = None, jobs: int = 1, progress: bool = False
) -> BatchResult:
    """``lgerisk preprocess``: every case of ``data`` into ``out`` (resumable); the cases table."""

    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort as run_preprocess

    report, table = run_preprocess(data, out, config or PreprocessConfig(), jobs=jobs, reporter=_reporter(progress))
    return BatchResult(Path(out), table, _errors(Path(out) / "errors.csv"), len(report.skipped))


def extract_features(data: PathLike, out: PathLike, jobs: int = 1, progress: bool = False) -> BatchResult:
    """``lgerisk extract-radiomics``: the radiomics feature table of a (preprocessed or raw) cohort, written
    to the CSV ``out`` (resumable) and returned."""

    from lgerisk.radiomics.run import extract_cohort

    report, table, _ = extract_cohort(data, out, jobs=jobs, reporter=_reporter(progress))
    path = Path(out)
    errors = _errors(path.with_name(path.name.removesuffix(".csv") + ".errors.csv"))
    return BatchResult(path, table, errors, len(report.skipped))


def _errors(path: Path) -> pd.DataFrame:
    """The errors table a batch wrote at ``path`` (an empty one when every case succeeded)."""
    import pandas as pd

    if path.is_file():
        return pd.read_csv(path, dtype={"case_id": str})
    return pd.DataFrame(columns=["case_id", "source", "error"])


def pretrain(
    data: PathLike,
    out: PathLike,
    config: PretrainConfig | None = None,
    features: PathLike | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = False,
) -> PretrainResult:
    """``lgerisk pretrain``: the radiomics-guided contrastive encoder of ``data``'s scans (no outcomes used)."""
    from lgerisk.training.pretrain import PretrainConfig, run_pretrain

    return run_pretrain(
        data,
        out,
        config or PretrainConfig(),
        features=None if features is None else str(features),
        device=device,
        resume=resume,
        reporter=_reporter(progress),
    )


def finetune(
    data: PathLike,
    out: PathLike,
    config: FinetuneConfig | None = None,
    encoder: PathLike | None = None,
    outcomes: PathLike | None = None,
    features: PathLike | None = None,
    device: str = "auto",
    progress: bool = False,
) -> FinetuneResult:
    """``lgerisk finetune``: every method on the same cross-validation folds, then the final risk model.

    Without ``config``: the defaults, a frozen probe on ``encoder`` or, without one, the network trained from
    scratch. ``config.labels`` ``None`` (the default) reads a raw cohort's masks with the encoder's label map."""
    from lgerisk.training.finetune import run_finetune
    from lgerisk.training.finetune_config import FinetuneConfig

    if config is None:
        config = FinetuneConfig(mode=FinetuneConfig.default_mode(encoder is not None))
    return run_finetune(
        data,
        out,
        config,
        encoder=encoder,
        outcomes=outcomes,
        features=None if features is None else str(features),
        device=device,
        reporter=_reporter(progress),
    )


def load_model(run: PathLike, device: str = "cpu") -> RiskPredictor:
    """A risk model (a ``finetune`` run folder) loaded once, ready for :func:`predict_scan`."""
    from lgerisk.inference import RiskPredictor

    return RiskPredictor.load(run, device=device)


def _model(model: RiskPredictor | PathLike) -> RiskPredictor:
    from lgerisk.inference import RiskPredictor

    return model if isinstance(model, RiskPredictor) else load_model(model)


def predict_scan(
    model: RiskPredictor | PathLike,
    image: PathLike,
    mask: PathLike | None = None,
    covariates: dict[str, float] | None = None,
) -> Prediction:
    """``lgerisk predict`` for one scan: its risk, risk group, survival and the checks behind ``reliable``."""
    import tempfile

    from lgerisk.predict.masks import scan_case

    predictor = _model(model)
    with tempfile.TemporaryDirectory(prefix="lgerisk-predict-") as work:
        record = predictor.predict_case(scan_case(image, mask), Path(work), covariates)
    return Prediction.from_record(record)


def _served(model: RiskPredictor | PathLike) -> tuple[Path, str, str | None]:
    """(run folder, device, label map) to load ``model`` with again (in batch workers)."""
    from lgerisk.inference import RiskPredictor

    if isinstance(model, RiskPredictor):
        return model.model_dir, str(model.device), model.preprocess.labels
    return Path(model), "cpu", None


def predict_cohort(
    model: RiskPredictor | PathLike, data: PathLike, out: PathLike | None = None, jobs: int = 1, progress: bool = False
) -> BatchResult:
    """``lgerisk predict`` over a cohort: ``table`` has one prediction per predicted case, ``errors`` one row per
    failed case (``case_id``, ``error``); with ``out``, the CSV ``predict --out`` writes (resumable, with
    ``OUT.errors.csv``). A loaded ``model`` is loaded again in the workers, with its device and label map."""
    import pandas as pd

    from lgerisk.inference import LIST_FIELDS
    from lgerisk.predict.run import predict_cases

    run, device, labels = _served(model)
    cases = list(read_cohort(data).cases)
    report, records, _ = predict_cases(
        cases, run, out, device=device, labels=labels, jobs=jobs, reporter=_reporter(progress)
    )
    table = pd.DataFrame(records) if records else pd.DataFrame(columns=["case_id", "risk_score", "risk_group"])
    for column in LIST_FIELDS:
        if column in table.columns:
            table[column] = table[column].map(tuple)
    errors = pd.DataFrame(
        [{"case_id": key, "error": value} for key, value in report.failed.items()], columns=["case_id", "error"]
    )
    return BatchResult(Path(out) if out is not None else Path(data), table, errors, len(report.skipped))


def explain_scan(
    model: RiskPredictor | PathLike,
    image: PathLike,
    out: PathLike,
    mask: PathLike | None = None,
    covariates: dict[str, float] | None = None,
) -> Explanation:
    """``lgerisk explain`` for one scan: the report, attribution maps and radiomics concepts in ``out/ID/``
    (``covariates``: for a model trained with clinical covariates). A scan that cannot be explained raises
    ``CaseError`` with the reason (an unexpected error with its traceback)."""
    import json

    import pandas as pd

    from lgerisk.errors import CaseError
    from lgerisk.explain.run import explain_cases
    from lgerisk.predict.masks import scan_case

    run, device, labels = _served(model)
    case = scan_case(image, mask)
    clinical = {case.case_id: dict(covariates)} if covariates else None
    report, _ = explain_cases(
        [case], run, out, device=device, labels=labels, clinical=clinical, reporter=Reporter(debug=True)
    )
    folder = Path(out) / case.case_id
    if case.case_id in report.failed:
        raise CaseError(report.failed[case.case_id])
    record = report.results.get(case.case_id)
    if record is None:  # explained before from the same inputs: read what was stored
        record = json.loads((folder / "prediction.json").read_text(encoding="utf-8"))["record"]
    return Explanation(
        Prediction.from_record(record),
        folder,
        pd.read_csv(folder / "features.csv"),
        {p.name: p for p in sorted(folder.iterdir()) if p.is_file()},
    )
