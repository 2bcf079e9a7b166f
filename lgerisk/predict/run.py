"""Risk for new scans with a trained risk model: the library behind ``lgerisk predict``.

A :class:`RiskPredictor` is loaded once (model, card, settings) and then predicts scan after scan:
the model's own preprocessing, the radiomics it needs (only when its head uses them), the tensor,
the risk score (log relative hazard), the risk group from the training tertiles, survival at the
model's horizons from its Breslow baseline hazard, the scar metrics, and warnings wherever the scan
lies outside what the model was trained on. Prediction record (a row in CSV, an object in JSON)::

    case_id, risk_score, risk_group, survival_<h> (one per horizon), scar_percent, greyzone_percent,
    myocardium_mass_g, myocardium_volume_ml, scar_volume_ml, scar_method, model_method,
    model_trained_on_synthetic, scan_synthetic, reliable, unreliable_reasons, warnings

* ``risk_score``: log relative hazard; always given, also when the prediction is not reliable.
* ``risk_group``: ``low``, ``intermediate`` or ``high`` (the training cohort's risk tertiles), or
  ``out of range`` when ``reliable`` is false.
* ``model_trained_on_synthetic``: the model card says the model was trained on synthetic scans.
* ``scan_synthetic``: this scan comes from the synthetic generator (its own marker, see
  :mod:`lgerisk.io.provenance`; never the case id).
* ``reliable``: false when the scan lies outside the model's training ranges (slice spacing and count,
  in-plane spacing, myocardial volume, intensity, scar burden), or when scan and model come from
  different worlds (a real scan and a model trained on synthetic data, or the reverse);
  ``unreliable_reasons`` lists why (joined with ``; `` in CSV, a list in JSON). The numbers stay in
  their columns, the risk group does not.
* ``warnings``: every warning, the reasons above included (``; `` in CSV, a list in JSON).

With ``dicom_seg`` (``--dicom-seg``, needs ``--out FILE``), each scan that is a DICOM series also gets
its scar and grey zone as a DICOM SEG over that series, ``FILE.seg/ID.dcm`` (see
:mod:`lgerisk.io.dicom_seg` for the attributes it keeps).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from lgerisk.batch import BatchReport, Shard, collect_errors, run_batch
from lgerisk.errors import CaseError, InputError, LgeriskError
from lgerisk.io.atomic import write_csv, write_json, write_text
from lgerisk.io.cohort import Case
from lgerisk.io.provenance import mismatch_reason, scan_is_synthetic

MODEL_ENV = "LGERISK_MODEL"
OUT_OF_RANGE = "out of range"
"""The risk group of a prediction that is not reliable (the scan lies outside what the model was trained on)."""
RECORD_VERSION = "2"
"""Changes whenever the prediction record gains or changes fields (stored predictions are then redone)."""
LIST_FIELDS = ("unreliable_reasons", "warnings")
"""Record fields that are lists (joined with '; ' in CSV)."""
RECORD_FIELDS = ("scar_percent", "greyzone_percent", "myocardium_mass_g", "myocardium_volume_ml", "scar_volume_ml",
                 "scar_method")
RANGE_LABELS = {"slice_spacing_mm": ("slice spacing", "mm"), "slice_count": ("slice count", ""),
                "inplane_spacing_mm": ("in-plane pixel spacing", "mm"),
                "myocardium_volume_ml": ("LV myocardial volume", "ml"),
                "image_p99": ("normalised intensity (99th percentile)", ""),
                "scar_percent": ("scar burden", "%")}


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``--model``, else ``$LGERISK_MODEL``, else a clear message saying how to get one."""
    chosen = model if model is not None else os.environ.get(MODEL_ENV)
    if not chosen:
        raise InputError("no risk model given: pass --model RUN (a folder written by lgerisk finetune) or set "
                         f"{MODEL_ENV}; train one with: lgerisk finetune --data COHORT --encoder PRETRAIN --out RUN.")
    return Path(chosen)


@dataclass
class RiskPredictor:
    """A loaded risk model and everything needed to apply it to a raw scan.

    Example:
        >>> predictor = RiskPredictor.load("work/risk")                          # doctest: +SKIP
        >>> predictor.predict_case(scan_case("scan.nii.gz"), Path("/tmp/w"))     # doctest: +SKIP
    """

    model: Any
    tabular: dict[str, Any]
    card: dict[str, Any]
    device: Any
    preprocess: Any  # PreprocessConfig
    spec: Any  # TensorSpec
    model_dir: Path
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], device: str = "cpu", labels: str | None = None) -> RiskPredictor:
        """Load a finetune run folder (``weights_only`` checkpoint) with its settings."""
        from lgerisk.data.tensors import TensorSpec
        from lgerisk.preprocess.config import PreprocessConfig
        from lgerisk.training.devices import resolve_device
        from lgerisk.training.finetune import load_risk_model

        torch_device = resolve_device(device)
        model, tabular, card = load_risk_model(model_dir, device=str(torch_device))
        settings = dict((card.get("preprocessing") or {}).get("settings") or {})
        if labels is not None:
            settings["labels"] = labels
        elif not settings.get("labels") and card.get("labels"):
            settings["labels"] = card["labels"]
        preprocess = PreprocessConfig.from_dict(settings) if settings else PreprocessConfig()
        params: dict[str, Any] = {}
        if tabular.get("radiomics"):
            from lgerisk.radiomics.settings import ROIS, load_params, params_hash

            params = load_params()
            trained = (card.get("radiomics") or {}).get("settings_hash")
            if trained is not None and trained != params_hash(params, tuple(ROIS)):
                raise InputError(f"{model_dir}: the model's radiomics inputs were extracted with other settings "
                                 f"({trained}) than lgerisk's defaults, which predict uses; retrain it on a feature "
                                 "table from the default extract-radiomics settings.")
        return cls(model=model, tabular=tabular, card=card, device=torch_device, preprocess=preprocess,
                   spec=TensorSpec.from_dict(card["tensor_spec"]), model_dir=Path(model_dir), params=params)

    @property
    def model_hash(self) -> str:
        """Hash of the model file and the preprocessing settings (a cached prediction is reused only under it)."""
        digest = hashlib.sha256((self.model_dir / "model.pt").read_bytes())
        digest.update(self.preprocess.settings_hash().encode())
        return digest.hexdigest()[:16]

    @property
    def horizons(self) -> list[float]:
        """The horizons of the survival probabilities."""
        return [float(h) for h in self.card["survival"]["horizons"]]

    def prepare(self, case: Case, work: Path, seg_path: Path | None = None) -> tuple[Case, dict[str, Any]]:
        """Preprocess ``case`` into ``work`` with the model's settings: (preprocessed case, QC); the QC's
        ``synthetic`` says whether the scan comes from the synthetic generator (its own marker).

        A case of a preprocessed folder (``lgerisk preprocess`` output) is used as it is when it was
        preprocessed with the model's settings (preprocessing it again would misread its labels).
        ``seg_path``: write the scar and grey zone there as a DICOM SEG over the scan's DICOM series (a
        scan that is no DICOM series gets a warning instead)."""
        from lgerisk.io import dicom_seg
        from lgerisk.preprocess.pipeline import (
            IMAGE_FILE,
            MASK_FILE,
            case_dir,
            preprocess_case,
            write_case,
        )

        done = _preprocessed_qc(case)
        if done is not None:
            if done.get("settings_hash") != self.preprocess.settings_hash():
                raise CaseError(f"{case.image}: already preprocessed, but with other settings than the model's; "
                                "give the raw scan and mask instead.")
            warnings = list(done.get("warnings") or []) + ([dicom_seg.PREPROCESSED_WARNING] if seg_path else [])
            return case, {**done, "synthetic": scan_is_synthetic(case.image, done), "warnings": warnings}
        result = preprocess_case(case, self.preprocess)
        qc = {**result.qc, "synthetic": scan_is_synthetic(case.image, result.qc)}
        if int(qc.get("slices_with_myocardium") or 0) < 2:
            raise CaseError(f"{case.image}: only {qc.get('slices_with_myocardium')} slice(s) with myocardium; the "
                            "model needs a short-axis stack (2 or more slices).")
        if seg_path is not None:
            if dicom_seg.has_dicom_series(case.image) and result.source_labels is not None:
                dicom_seg.write_scar_seg(seg_path, case.image, result.source_labels, str(qc.get("scar_method")))
            else:
                qc["warnings"] = list(qc.get("warnings") or []) + [dicom_seg.NOT_DICOM_WARNING]
        write_case(result, work)
        folder = case_dir(work, case.case_id)
        return Case(case.case_id, folder / IMAGE_FILE, folder / MASK_FILE, case.time, case.event,
                    case.covariates), qc

    def inputs(self, prepared: Case, covariates: dict[str, Any] | None = None,
               qc: dict[str, Any] | None = None) -> tuple[Any, Any, dict[str, Any]]:
        """(image tensor (1, C, D, H, W), tabular tensor or None, radiomics row) of a preprocessed case;
        ``qc`` (its preprocessing QC) gives the scar metrics a ``--with-scar`` model's head takes."""
        import numpy as np
        import torch

        from lgerisk.data.tensors import case_tensor

        tensor = case_tensor(prepared.image, prepared.mask, self.spec)
        row: dict[str, Any] = {}
        parts = []
        if self.tabular.get("radiomics"):
            from lgerisk.radiomics.extract import feature_row
            from lgerisk.radiomics.settings import ROIS, params_hash

            rois = tuple(ROIS)
            row = feature_row(prepared.case_id, prepared.image, prepared.mask, self.params, rois,
                              params_hash(self.params, rois))
            values = np.array([as_number(row.get(c)) for c in self.tabular["radiomics"]], float)
            missing = [c for c, v in zip(self.tabular["radiomics"], values) if not np.isfinite(v)]
            if missing:
                row["__warnings__"] = [f"radiomics feature(s) {', '.join(missing)} not measurable in this scan "
                                       "(set to the training mean)"]
            values = (values - np.asarray(self.tabular["radiomics_mean"])) / np.asarray(self.tabular["radiomics_scale"])
            parts.append(np.where(np.isfinite(values), values, 0.0))
        if self.tabular.get("scar_metrics"):
            values = np.array([as_number((qc or {}).get(c)) for c in self.tabular["scar_metrics"]], float)
            if not np.isfinite(values).all():
                raise CaseError(f"{prepared.image}: the model's head takes {', '.join(self.tabular['scar_metrics'])} "
                                "and the preprocessing QC of this scan has none.")
            parts.append((values - np.asarray(self.tabular["scar_metrics_mean"]))
                         / np.asarray(self.tabular["scar_metrics_scale"]))
        if self.tabular.get("covariates"):
            given = covariates or {}
            missing = [c for c in self.tabular["covariates"] if as_number(given.get(c)) != as_number(given.get(c))]
            if missing:
                raise CaseError(f"the model needs covariate(s) {', '.join(missing)}; give them "
                                "with --clinical FILE (case_id plus those columns) or in the cohort's outcomes.")
            values = np.array([as_number(given[c]) for c in self.tabular["covariates"]], float)
            parts.append((values - np.asarray(self.tabular["covariate_mean"])) / np.asarray(self.tabular["covariate_scale"]))
        image = torch.from_numpy(tensor).unsqueeze(0).to(self.device)
        tab = torch.from_numpy(np.concatenate(parts).astype(np.float32)).unsqueeze(0).to(self.device) if parts else None
        return image, tab, row

    def risk(self, image: Any, tabular: Any) -> float:
        """The risk score (log relative hazard) of one prepared input."""
        import torch

        with torch.no_grad():
            return float(self.model(image, tabular).float().cpu()[0])

    @property
    def trained_on_synthetic(self) -> bool:
        """Whether the model card says the model was trained on synthetic scans."""
        return bool((self.card.get("data") or {}).get("synthetic"))

    @property
    def preprocessing_outdated(self) -> str | None:
        """Why the model's training scans were preprocessed differently from how this lgerisk preprocesses
        with the same settings (an earlier preprocessing version), or None when they match."""
        from lgerisk.preprocess.config import PreprocessConfig

        trained = self.card.get("preprocessing") or {}
        settings, recorded = trained.get("settings"), trained.get("settings_hash")
        if not settings or not recorded:
            return None
        try:
            now = PreprocessConfig.from_dict(settings).settings_hash()
        except LgeriskError:
            return None
        if now == recorded:
            return None
        return ("the model was trained on scans preprocessed by an earlier version of lgerisk's preprocessing "
                f"(settings hash {recorded}, now {now}: e.g. another remote-myocardium reference); retrain it")

    def record(self, case_id: str, risk: float, qc: dict[str, Any], tensor: Any) -> dict[str, Any]:
        """The prediction record (see the module docstring); ``qc``'s ``synthetic`` says whether the scan
        is synthetic (set by :meth:`prepare`)."""
        import numpy as np

        from lgerisk.evaluation.cox import survival_at
        from lgerisk.evaluation.groups import risk_groups

        survival = self.card["survival"]
        probabilities = survival_at(np.array([risk]), np.asarray(survival["baseline_times"], float),
                                    np.asarray(survival["baseline_cumhaz"], float), np.asarray(self.horizons))[0]
        record: dict[str, Any] = {"case_id": case_id, "risk_score": round(risk, 6),
                                  "risk_group": str(risk_groups(np.array([risk]),
                                                                tuple(survival["risk_thresholds"]))[0])}
        for horizon, value in zip(self.horizons, probabilities):
            record[f"survival_{horizon:g}"] = round(float(value), 6)
        for key in RECORD_FIELDS:
            record[key] = qc.get(key)
        seen = survival.get("training_risk_range")
        extrapolated = bool(seen) and not seen[0] <= risk <= seen[1]
        record["model_method"] = self.card.get("method")
        record["model_trained_on_synthetic"] = self.trained_on_synthetic
        record["scan_synthetic"] = bool(qc.get("synthetic"))
        outside = out_of_range_warnings(qc, float(np.percentile(tensor[0, 0].cpu().numpy(), 99)),
                                        self.card.get("training_ranges") or {})
        reasons = list(outside)
        mismatch = mismatch_reason(record["scan_synthetic"], record["model_trained_on_synthetic"])
        if mismatch is not None:
            reasons.append(mismatch)
        if self.preprocessing_outdated is not None:
            reasons.append(self.preprocessing_outdated)
        trained_methods = self.tabular.get("scar_methods")
        if self.tabular.get("scar_metrics") and trained_methods and qc.get("scar_method") not in trained_methods:
            reasons.append(f"the model's head takes scar % measured by {' or '.join(trained_methods)}, and this "
                           f"scan's is measured by {qc.get('scar_method')} (e.g. its mask has no scar labels)")
        record["reliable"] = not reasons
        record["unreliable_reasons"] = reasons
        if reasons:
            record["risk_group"] = OUT_OF_RANGE  # the numeric score stays in its column
        record["warnings"] = reasons + list(qc.get("warnings") or [])
        if extrapolated:
            record["warnings"].append(f"risk score {risk:.3g} is outside the training cohort's range "
                                      f"{seen[0]:.3g} to {seen[1]:.3g}: the survival estimates are extrapolated")
        return record

    def predict_case(self, case: Case, work: Path, covariates: dict[str, Any] | None = None,
                     seg_path: Path | None = None) -> dict[str, Any]:
        """Preprocess, extract what the model needs, and predict one case (``seg_path``: see :meth:`prepare`)."""
        prepared, qc = self.prepare(case, work, seg_path)
        image, tabular, row = self.inputs(prepared, covariates if covariates is not None else case.covariates, qc)
        record = self.record(case.case_id, self.risk(image, tabular), qc, image)
        record["warnings"] += row.get("__warnings__", [])
        return record


def _preprocessed_qc(case: Case) -> dict[str, Any] | None:
    """The QC record of a case that is already preprocessed (``cases/ID/{image,mask}.nii.gz`` + ``qc.json``)."""
    from lgerisk.preprocess.pipeline import IMAGE_FILE, MASK_FILE, QC_FILE

    image = Path(case.image)
    if image.name != IMAGE_FILE or case.mask is None or Path(case.mask) != image.parent / MASK_FILE:
        return None
    try:
        qc = json.loads((image.parent / QC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return qc if isinstance(qc, dict) else None


def as_number(value: Any) -> float:
    """``float(value)``, NaN where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def out_of_range_warnings(qc: dict[str, Any], image_p99: float, ranges: dict[str, list[float]]) -> list[str]:
    """Sentences for every checked quantity outside the training cohort's range.

    Example:
        >>> out_of_range_warnings({"slice_spacing_mm": 8.0}, 1.0, {"slice_spacing_mm": [10.0, 13.0]})
        ['slice spacing 8 mm is outside the training range 10-13 mm']
    """
    values = dict(qc)
    spacing = qc.get("original_spacing_mm")
    if isinstance(spacing, list) and len(spacing) >= 2:
        values["inplane_spacing_mm"] = float(min(spacing[:2]))
    values["image_p99"] = image_p99
    out = []
    for key, (label, unit) in RANGE_LABELS.items():
        if key not in ranges or not isinstance(values.get(key), (int, float)):
            continue
        low, high = ranges[key]
        value = float(values[key])
        if value < low or value > high:
            suffix = f" {unit}" if unit else ""
            digits = 3  # enough digits that the value and the bound it crosses read differently
            while digits < 12 and f"{value:.{digits}g}" == f"{low if value < low else high:.{digits}g}":
                digits += 1
            out.append(f"{label} {value:.{digits}g}{suffix} is outside the training range "
                       f"{low:.{digits}g}-{high:.{digits}g}{suffix}")
    return out


# ---------------------------------------------------------------- batches


def _predictor(model_dir: str, device: str, labels: str | None) -> RiskPredictor:
    """One predictor per process (the model is loaded once per worker, not once per scan); a model
    file rewritten since is loaded afresh."""
    try:
        stamp = (Path(model_dir) / "model.pt").stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _cached_predictor(model_dir, device, labels, stamp)


@lru_cache(maxsize=2)
def _cached_predictor(model_dir: str, device: str, labels: str | None, stamp: int) -> RiskPredictor:
    return RiskPredictor.load(model_dir, device=device, labels=labels)


def _part(parts: Path, case_id: str) -> Path:
    return parts / "cases" / f"{case_id}.json"


def _covariates_used(case: Case, clinical: dict[str, dict[str, Any]], names: list[str]) -> dict[str, float]:
    """The values of the model's covariates for ``case`` (what a stored prediction depends on beyond the scan)."""
    given = clinical.get(case.case_id)
    given = given if given is not None else (case.covariates or {})
    return {name: as_number(given.get(name)) for name in names}


def worker_threads(jobs: int) -> int | None:
    """Torch threads per worker process so that ``jobs`` workers share the cores (None: one process)."""
    return None if jobs <= 1 else max(1, (os.cpu_count() or 1) // jobs)


def seg_folder(out: str | os.PathLike[str]) -> Path:
    """Where ``predict --dicom-seg --out FILE`` writes the DICOM SEGs: ``FILE.seg/``."""
    return Path(f"{out}.seg")


def _seg_path(case: Case, seg_dir: Path | None) -> Path | None:
    return seg_dir / f"{case.case_id}.dcm" if seg_dir is not None else None


def _predict_one(case: Case, model_dir: str, device: str, labels: str | None, parts: Path, key: str,
                 clinical: dict[str, dict[str, Any]], threads: int | None = None,
                 seg_dir: Path | None = None, dicom_seg: bool = False) -> dict[str, Any]:
    from lgerisk.preprocess.pipeline import source_hash

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    predictor = _predictor(model_dir, device, labels)
    _part(parts, case.case_id).unlink(missing_ok=True)
    seg_path = _seg_path(case, seg_dir)
    if seg_path is not None:
        seg_path.unlink(missing_ok=True)  # never a SEG of older inputs beside a new prediction
    record = predictor.predict_case(case, parts / "work", clinical.get(case.case_id),
                                    seg_path if dicom_seg else None)
    used = _covariates_used(case, clinical, list(predictor.tabular.get("covariates") or []))
    write_json(_part(parts, case.case_id), {"key": key, "image_sha256": source_hash(case.image),
                                            "mask_sha256": source_hash(case.mask), "covariates": used,
                                            "record": record}, sort_keys=False)
    return record


def _is_predicted(case: Case, parts: Path, key: str, clinical: dict[str, dict[str, Any]] | None = None,
                  covariates: list[str] | None = None, seg_dir: Path | None = None) -> bool:
    """Whether ``case`` is predicted from its current inputs (and, given ``seg_dir``, has its SEG there)."""
    from lgerisk.io.dicom_seg import has_dicom_series
    from lgerisk.preprocess.pipeline import source_hash

    seg_path = _seg_path(case, seg_dir)
    if seg_path is not None and has_dicom_series(case.image) and not seg_path.is_file():
        return False
    try:
        stored = json.loads(_part(parts, case.case_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    used = _covariates_used(case, clinical or {}, covariates or [])
    return (stored.get("key") == key and stored.get("image_sha256") == source_hash(case.image)
            and stored.get("mask_sha256") == source_hash(case.mask)
            and json.dumps(stored.get("covariates") or {}) == json.dumps(used))


def predict_cases(cases: list[Case], model_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None,
                  fmt: str = "csv", device: str = "cpu", labels: str | None = None, jobs: int = 1,
                  shard: Shard | None = None, clinical: dict[str, dict[str, Any]] | None = None, quiet: bool = False,
                  debug: bool = False, dicom_seg: bool = False) -> tuple[BatchReport, list[dict[str, Any]], str]:
    """Predict ``cases`` (resumable when ``out`` is a file: finished cases are kept in ``OUT.parts/``);
    returns (report, records in case order, the rendered output text). ``dicom_seg``: also write each
    DICOM-series scan's scar and grey zone as a DICOM SEG, ``OUT.seg/ID.dcm`` (needs ``out``)."""
    import tempfile

    from lgerisk.io.dicom_seg import check_seg_sources

    if fmt not in ("csv", "json"):
        raise InputError(f"--format {fmt!r}: choose csv or json.")
    if dicom_seg:
        if out is None:
            raise InputError("--dicom-seg needs --out FILE (the DICOM SEGs are written beside it, in FILE.seg/).")
        check_seg_sources([case.image for case in cases], "predict")
    seg_dir = seg_folder(out) if out is not None else None
    predictor = _predictor(str(model_dir), device, labels)  # fails fast on a bad model, loads it once
    key = predictor.model_hash + (labels or "") + f"-r{RECORD_VERSION}"
    selected = (shard or Shard()).select(cases)
    clinical = clinical or {}
    with tempfile.TemporaryDirectory(prefix="lgerisk-predict-") as scratch:
        parts = Path(f"{out}.parts") if out is not None else Path(scratch)
        parts.mkdir(parents=True, exist_ok=True)
        work = partial(_predict_one, model_dir=str(model_dir), device=device, labels=labels, parts=parts, key=key,
                       clinical=clinical, threads=worker_threads(jobs), seg_dir=seg_dir, dicom_seg=dicom_seg)
        is_done = partial(_is_predicted, parts=parts, key=key, clinical=clinical,
                          covariates=list(predictor.tabular.get("covariates") or []),
                          seg_dir=seg_dir if dicom_seg else None)
        report = run_batch(selected, work, is_done, parts, jobs=jobs, description="predict", quiet=quiet,
                           debug=debug, start_method="spawn")
        every = cases if out is not None else selected  # a file gathers all shards' finished cases
        records = []
        for case in every:
            if case.case_id in report.results:
                records.append(report.results[case.case_id])
            elif is_done(case):  # finished earlier, or by another shard, from these very inputs
                records.append(json.loads(_part(parts, case.case_id).read_text(encoding="utf-8"))["record"])
        text = render(records, fmt)
        if out is not None:
            errors = collect_errors(parts)
            write_text(Path(out), text)
            errors_path = Path(f"{out}.errors.csv")
            if len(errors):
                write_csv(errors_path, errors)
            else:
                errors_path.unlink(missing_ok=True)
    return report, records, text


def render(records: list[dict[str, Any]], fmt: str) -> str:
    """Records as CSV (warnings and unreliable reasons joined with '; ') or a JSON list."""
    if fmt == "json":
        return json.dumps(records, indent=2, sort_keys=False) + "\n"
    if not records:
        return ""  # not a lone empty line (every case failed)
    import csv
    import io

    columns = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, **{name: "; ".join(record.get(name) or []) for name in LIST_FIELDS
                                      if name in record}})
    return buffer.getvalue()


def read_clinical(path: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """``case_id`` + covariate columns -> {case_id: {name: value}} (for models with covariates)."""
    if path is None:
        return {}
    from lgerisk.io.cohort import read_outcomes

    return {case_id: covariates for case_id, (_, _, covariates) in read_outcomes(Path(path)).items()}
