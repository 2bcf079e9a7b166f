"""The public Python API: what the commands do, for a notebook or a script.

Every function here is what the command of the same name runs, with the same files written and the
same errors (:class:`~lgerisk.errors.InputError` for bad input, a ``ValueError``), minus the
progress bars (``progress=True`` shows them). Results are dataclasses and pandas DataFrames.

    read_cohort(data)                               -> Cohort (cases, layout)
    synth_cohort(out, SynthConfig(...))             -> DataFrame (the SYNTHETIC cohort's ground truth)
    calibrate_scar(data, out, labels)               -> ScarCalibration (the derived scar's learnt setting)
    preprocess_case(image, mask)                    -> QCRecord (scar %, grey zone %, mass, warnings, ...)
    preprocess_cohort(data, out)                    -> BatchResult (cases.csv as a DataFrame, errors)
    extract_features(data, out_csv)                 -> FeatureBatch (features.csv as a DataFrame, errors)
    pretrain(data, out, PretrainConfig(...))        -> PretrainResult
    finetune(data, out, FinetuneConfig(...), encoder=...) -> FinetuneResult (comparison table)
    load_model(run)                                 -> RiskPredictor
    predict_scan(model, image, mask)                -> Prediction
    predict_cohort(model, data)                     -> PredictionBatch (predictions, failed cases)
    explain_scan(model, image, out, mask)           -> Explanation
    explain_cohort(model, data, out)                -> ExplanationBatch (report pages, failed cases)

The batch functions take the command's settings as keywords (``shard=``, ``dicom_seg=``, ...) and a
``reporter`` (:class:`~lgerisk.reporting.Reporter`) for bars, notes and the wording of errors; the command line
is these functions with its options parsed.

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

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.batch import BatchResult, Shard
from lgerisk.inference import Prediction
from lgerisk.preprocess.qc import QCRecord
from lgerisk.reporting import Reporter
from lgerisk.types import TypePath

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from lgerisk.inference import RiskPredictor
    from lgerisk.io.cohort import Case, Cohort
    from lgerisk.preprocess.calibration import ScarCalibration
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.synth import SynthConfig
    from lgerisk.training.finetune import FinetuneResult
    from lgerisk.training.finetune_config import FinetuneConfig
    from lgerisk.training.pretrain import PretrainResult
    from lgerisk.training.pretrain_config import PretrainConfig
    from lgerisk.types import JSONScalar

__all__ = [
    "BatchResult",
    "Explanation",
    "ExplanationBatch",
    "FeatureBatch",
    "Prediction",
    "PredictionBatch",
    "QCRecord",
    "calibrate_scar",
    "explain_cohort",
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
    "synth_cohort",
]


@dataclass(frozen=True)
class Explanation:
    """One explained scan: its prediction, the radiomics features most aligned with the model's risk (with
    this scan's value and percentile in the training cohort), and the files written (report.html, ...)."""

    prediction: Prediction
    out: Path
    features: pd.DataFrame
    files: dict[str, Path]


@dataclass(frozen=True)
class FeatureBatch(BatchResult):
    """``extract_features``' result: the feature table, and with ``stability`` the per-feature ICC table."""

    stability: pd.DataFrame | None = None


@dataclass(frozen=True)
class PredictionBatch(BatchResult):
    """``predict_cohort``'s result: ``predictions`` and ``table`` have one prediction per predicted case (in
    case order); ``text`` is the output as ``predict`` renders it (CSV or JSON; what it prints without ``--out``)."""

    predictions: tuple[Prediction, ...] = ()
    text: str = ""

    @functools.cached_property
    def table(self) -> pd.DataFrame:  # made on first use: pandas is slow to import
        """One row per predicted case (the records ``predict`` writes; list fields as tuples)."""
        import pandas as pd

        from lgerisk.inference import LIST_FIELDS

        records = [prediction.values for prediction in self.predictions]
        table = pd.DataFrame(records) if records else pd.DataFrame(columns=["case_id", "risk_score", "risk_group"])
        for column in LIST_FIELDS:
            if column in table.columns:
                table[column] = table[column].map(tuple)
        return table


@dataclass(frozen=True)
class ExplanationBatch(BatchResult):
    """``explain_cohort``'s result: ``pages`` maps each explained case to its report page, ``cohort_page``
    is the cohort's page (with ``cohort=True``)."""

    pages: dict[str, Path] = field(default_factory=dict)
    cohort_page: Path | None = None


def _reporter(progress: bool, reporter: Reporter | None = None) -> Reporter:
    """``reporter`` where given; else bars when ``progress`` and never notes (a notebook reads the results)."""
    return reporter if reporter is not None else Reporter(progress=progress)


def synth_cohort(
    out: TypePath, config: SynthConfig | None = None, force: bool = False, progress: bool = False
) -> pd.DataFrame:
    """``lgerisk synth``: a SYNTHETIC cohort (images, masks, outcomes) written to ``out``; its ground truth.

    ``force``: write into a non-empty folder that is not a cohort lgerisk synth wrote (nothing is removed)."""
    from lgerisk.progress import progress as bar
    from lgerisk.synth import SynthConfig, generate_cohort

    config = config or SynthConfig()
    with bar("synth", config.n_cases, not progress) as advance:
        return generate_cohort(Path(out), config, progress=lambda n: advance(), force=force)


def calibrate_scar(
    data: TypePath, out: TypePath | None, labels: str = "emidec", reporter: Reporter | None = None
) -> ScarCalibration:
    """``lgerisk calibrate-scar``: the derived scar's setting learnt from expert-labelled scans (card to ``out``)."""
    from lgerisk.preprocess.calibrate import calibrate_scar as calibrate

    return calibrate(data, out, labels=labels, reporter=_reporter(False, reporter))


def read_cohort(data: TypePath) -> Cohort:
    """The cases of a cohort folder, a manifest CSV or a DICOM folder tree (layouts: ``docs/cohorts.md``)."""
    from lgerisk.io.cohort import discover_cohort

    return discover_cohort(data)


def preprocess_case(
    image: TypePath,
    mask: TypePath | None = None,
    config: PreprocessConfig | None = None,
    out: TypePath | None = None,
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
    return result.record


def preprocess_cohort(
    data: TypePath,
    out: TypePath,
    config: PreprocessConfig | None = None,
    jobs: int = 1,
    progress: bool = False,
    *,
    shard: Shard | str | None = None,
    dicom_seg: bool = False,
    reporter: Reporter | None = None,
) -> BatchResult:
    """``lgerisk preprocess``: every case of ``data`` into ``out`` (resumable); the cases table.

    ``shard``: run shard ``i/n`` of the cohort only; ``dicom_seg``: also each DICOM-series scan's scar as a
    DICOM SEG; ``reporter``: bars, notes and error wording (default: bars when ``progress``)."""

    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.run import preprocess_cohort as run_preprocess

    report, table = run_preprocess(
        data,
        out,
        config or PreprocessConfig(),
        jobs=jobs,
        shard=_shard(shard),
        dicom_seg=dicom_seg,
        reporter=_reporter(progress, reporter),
    )
    return BatchResult.of(report, Path(out), table)


def _shard(shard: Shard | str | None) -> Shard:
    """A shard given as ``Shard`` or its text ``i/n`` (None: the whole cohort)."""
    return shard if isinstance(shard, Shard) else Shard.parse(shard)


def extract_features(
    data: TypePath,
    out: TypePath,
    jobs: int = 1,
    progress: bool = False,
    *,
    params: TypePath | None = None,
    image_types: tuple[str, ...] | None = None,
    rois: tuple[str, ...] | None = None,
    stability: bool = False,
    n_random: int = 2,
    seed: int = 0,
    preprocess_config: PreprocessConfig | None = None,
    shard: Shard | str | None = None,
    reporter: Reporter | None = None,
) -> FeatureBatch:
    """``lgerisk extract-radiomics``: the radiomics feature table of a (preprocessed or raw) cohort, written
    to the CSV ``out`` (resumable) and returned.

    ``params``: a pyradiomics YAML (default: the shipped LGE settings), ``image_types`` and ``rois`` narrow
    it; ``stability``: also the per-feature ICCs under ``n_random`` contour randomisations (``seed``) plus
    erosion and dilation; ``preprocess_config``: how a raw cohort is preprocessed first."""

    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.radiomics.run import extract_cohort
    from lgerisk.radiomics.settings import ROIS

    report, table, stability_table = extract_cohort(
        data,
        out,
        params_path=None if params is None else str(params),
        image_types=image_types,
        rois=tuple(ROIS) if rois is None else rois,
        jobs=jobs,
        shard=_shard(shard),
        stability=stability,
        n_random=n_random,
        seed=seed,
        preprocess_config=preprocess_config or PreprocessConfig(),
        reporter=_reporter(progress, reporter),
    )
    done, failed = tuple(report.done), dict(report.failed)
    return FeatureBatch(Path(out), done, len(report.skipped), failed, rows=table, stability=stability_table)


def pretrain(
    data: TypePath,
    out: TypePath,
    config: PretrainConfig | None = None,
    features: TypePath | None = None,
    device: str = "auto",
    resume: bool = False,
    progress: bool = False,
    *,
    jobs: int = 1,
    reporter: Reporter | None = None,
) -> PretrainResult:
    """``lgerisk pretrain``: the radiomics-guided contrastive encoder of ``data``'s scans (no outcomes used).

    ``resume``: continue the run in ``out`` after its last finished epoch; ``jobs``: processes that preprocess
    a raw cohort and extract its radiomics first; ``reporter``: bars, notes (an epoch's losses), error wording."""
    from lgerisk.training.pretrain import run_pretrain
    from lgerisk.training.pretrain_config import PretrainConfig

    return run_pretrain(
        data,
        out,
        config or PretrainConfig(),
        features=None if features is None else str(features),
        device=device,
        resume=resume,
        jobs=jobs,
        reporter=_reporter(progress, reporter),
    )


def finetune(
    data: TypePath,
    out: TypePath,
    config: FinetuneConfig | None = None,
    encoder: TypePath | None = None,
    outcomes: TypePath | None = None,
    features: TypePath | None = None,
    device: str = "auto",
    progress: bool = False,
    *,
    jobs: int = 1,
    reporter: Reporter | None = None,
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
        jobs=jobs,
        reporter=_reporter(progress, reporter),
    )


def load_model(run: TypePath, device: str = "cpu") -> RiskPredictor:
    """A risk model (a ``finetune`` run folder) loaded once, ready for :func:`predict_scan`."""
    from lgerisk.inference import RiskPredictor

    return RiskPredictor.load(run, device=device)


def _model(model: RiskPredictor | TypePath) -> RiskPredictor:
    from lgerisk.inference import RiskPredictor

    return model if isinstance(model, RiskPredictor) else load_model(model)


def predict_scan(
    model: RiskPredictor | TypePath,
    image: TypePath,
    mask: TypePath | None = None,
    covariates: dict[str, float] | None = None,
) -> Prediction:
    """``lgerisk predict`` for one scan: its risk, risk group, survival and the checks behind ``reliable``."""
    import tempfile

    from lgerisk.predict.masks import scan_case

    predictor = _model(model)
    with tempfile.TemporaryDirectory(prefix="lgerisk-predict-") as work:
        return predictor.predict_case(scan_case(image, mask), Path(work), covariates)


def _served(
    model: RiskPredictor | TypePath, device: str | None = None, labels: str | None = None
) -> tuple[Path, str, str | None]:
    """(run folder, device, label map) to load ``model`` with again (in batch workers): a loaded model's own
    unless ``device`` or ``labels`` are given; a run folder's defaults are the CPU and the model's labels."""
    from lgerisk.inference import RiskPredictor

    if isinstance(model, RiskPredictor):
        return model.model_dir, device or str(model.device), labels or model.preprocess.labels
    return Path(model), device or "cpu", labels


def _cases(data: TypePath | Sequence[Case | TypePath]) -> list[Case]:
    """The cases of a cohort (folder, manifest, DICOM tree), or the given cases and scans (each scan with the
    mask found beside it, as ``predict`` finds it)."""
    from lgerisk.io.cohort import Case
    from lgerisk.predict.masks import scan_case

    if isinstance(data, (str, os.PathLike)):
        return list(read_cohort(data).cases)
    return [item if isinstance(item, Case) else scan_case(item) for item in data]


def predict_cohort(
    model: RiskPredictor | TypePath,
    data: TypePath | Sequence[Case | TypePath],
    out: TypePath | None = None,
    jobs: int = 1,
    progress: bool = False,
    *,
    fmt: str = "csv",
    device: str | None = None,
    labels: str | None = None,
    clinical: Mapping[str, Mapping[str, JSONScalar]] | None = None,
    shard: Shard | str | None = None,
    dicom_seg: bool = False,
    keep_freed_memory: bool = False,
    reporter: Reporter | None = None,
) -> PredictionBatch:
    """``lgerisk predict`` over a cohort (or a list of scans or cases): ``table`` has one prediction per predicted
    case, ``errors`` one row per failed case (``case_id``, ``error``); with ``out``, the file ``predict --out``
    writes (``fmt`` csv or json; resumable, with ``OUT.errors.csv``). A loaded ``model`` is loaded again in
    the workers, with its device and label map unless ``device``/``labels`` say otherwise. ``clinical``:
    covariates by case id; ``keep_freed_memory``: this process keeps freed memory for the network's next
    pass, for good (faster on a CPU; ``lgerisk predict`` sets it)."""
    from lgerisk.predict.run import predict_cases

    run, device, labels = _served(model, device, labels)
    report, records, text = predict_cases(
        _cases(data),
        run,
        out,
        fmt=fmt,
        device=device,
        labels=labels,
        jobs=jobs,
        shard=_shard(shard),
        clinical=clinical,
        dicom_seg=dicom_seg,
        reporter=_reporter(progress, reporter),
        keep_freed_memory=keep_freed_memory,
    )
    where = None if out is None else Path(out)
    return PredictionBatch(
        where,
        tuple(report.done),
        len(report.skipped),
        dict(report.failed),
        predictions=tuple(Prediction.from_record(record) for record in records),
        text=text,
    )


def explain_cohort(
    model: RiskPredictor | TypePath,
    data: TypePath | Sequence[Case | TypePath],
    out: TypePath,
    jobs: int = 1,
    progress: bool = False,
    *,
    cohort: bool | None = None,
    steps: int = 32,
    sanity_check: bool = True,
    device: str | None = None,
    labels: str | None = None,
    clinical: Mapping[str, Mapping[str, JSONScalar]] | None = None,
    shard: Shard | str | None = None,
    dicom_seg: bool = False,
    keep_freed_memory: bool = False,
    reporter: Reporter | None = None,
) -> ExplanationBatch:
    """``lgerisk explain`` over a cohort (or a list of scans or cases): a report folder per scan in ``out``
    (resumable) and, with ``cohort`` (default: when ``data`` is a cohort path), the cohort page.

    ``steps``: integrated-gradients evaluations; ``sanity_check``: compare the maps once with a randomised
    model's and say so in every report; the other settings as :func:`predict_cohort`'s."""
    import pandas as pd

    from lgerisk.explain.run import explain_cases

    run, device, labels = _served(model, device, labels)
    report, pages = explain_cases(
        _cases(data),
        run,
        out,
        device=device,
        labels=labels,
        steps=steps,
        jobs=jobs,
        shard=_shard(shard),
        cohort=isinstance(data, (str, os.PathLike)) if cohort is None else cohort,
        clinical=clinical,
        dicom_seg=dicom_seg,
        reporter=_reporter(progress, reporter),
        keep_freed_memory=keep_freed_memory,
        sanity_check=sanity_check,
    )
    case_pages = {str(k): Path(v) for k, v in sorted(pages.get("cases", {}).items())}
    table = pd.DataFrame({"case_id": list(case_pages), "report": [str(p) for p in case_pages.values()]})
    cohort_page = Path(pages["cohort"]) if pages.get("cohort") else None
    return ExplanationBatch(
        Path(out),
        tuple(report.done),
        len(report.skipped),
        dict(report.failed),
        rows=table,
        pages=case_pages,
        cohort_page=cohort_page,
    )


def explain_scan(
    model: RiskPredictor | TypePath,
    image: TypePath,
    out: TypePath,
    mask: TypePath | None = None,
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
