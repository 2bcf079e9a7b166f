"""Risk for one scan with a trained risk model: the :class:`RiskPredictor` behind ``lgerisk predict``
and ``lgerisk explain``.

A :class:`RiskPredictor` is loaded once (model, card, settings) and then predicts scan after scan:
the model's own preprocessing, the radiomics it needs (only when its head uses them), the tensor,
the risk score (log relative hazard), the risk group from the training tertiles, survival at the
model's horizons from its Breslow baseline hazard, the scar metrics, and warnings wherever the scan
lies outside what the model was trained on. The prediction record is described in
:mod:`lgerisk.predict.run`.

Example:
    >>> from lgerisk.inference import RiskPredictor
    >>> from lgerisk.predict.masks import scan_case
    >>> predictor = RiskPredictor.load("work/risk")                                  # doctest: +SKIP
    >>> predictor.predict_case(scan_case("scan.nii.gz"), Path("/tmp/w")).risk_group     # doctest: +SKIP
    'intermediate'
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.artifacts import MODEL_FILE
from lgerisk.errors import CaseError, InputError, LgeriskError
from lgerisk.io.provenance import mismatch_reason, scan_is_synthetic
from lgerisk.types import json_float, json_list

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import torch
    from numpy.typing import ArrayLike, NDArray

    from lgerisk.cards import RiskModelCard
    from lgerisk.data.tensors import TensorSpec
    from lgerisk.io.cohort import Case
    from lgerisk.models.survival import SurvivalModel
    from lgerisk.models.tabular import TabularScaling
    from lgerisk.preprocess.config import PreprocessConfig
    from lgerisk.preprocess.pipeline import PreprocessedCase
    from lgerisk.types import JSONDict, JSONValue, TypePath

__all__ = [
    "LIST_FIELDS",
    "MODEL_BATCH",
    "OUT_OF_RANGE",
    "RECORD_FIELDS",
    "Prediction",
    "PreparedScan",
    "RiskPredictor",
    "ScanPreparer",
    "as_number",
    "check_device",
    "image_p99",
    "load_predictor",
    "model_hash",
    "out_of_range_warnings",
]

OUT_OF_RANGE = "out of range"
"""The risk group of a prediction that is not reliable (the scan lies outside what the model was trained on)."""
LIST_FIELDS = ("unreliable_reasons", "warnings")
"""Record fields that are lists (joined with '; ' in CSV)."""
RECORD_FIELDS = (
    "scar_percent",
    "greyzone_percent",
    "myocardium_mass_g",
    "myocardium_volume_ml",
    "scar_volume_ml",
    "scar_method",
    "scar_confidence",
)
RANGE_LABELS = {
    "slice_spacing_mm": ("slice spacing", "mm"),
    "slice_count": ("slice count", ""),
    "inplane_spacing_mm": ("in-plane pixel spacing", "mm"),
    "myocardium_volume_ml": ("LV myocardial volume", "ml"),
    "image_p99": ("normalised intensity (99th percentile)", ""),
    "scar_percent": ("scar burden", "%"),
}


MODEL_BATCH = 4
"""Scans in one forward pass of the network; fewer are padded with zeros to this many. A convolution's CPU
kernels differ with the batch size in the last bits of a float, and at 2 or 3 scans a pass even depends on
a scan's place in the batch; at 4, a scan's risk is the same number wherever it sits and whatever shares
its pass, so it is predicted alone exactly as in a batch (tests/predict checks it). On CPU a pass of one
scan runs slower kernels than a pass of 4."""


def image_p99(tensor: ArrayLike) -> float:
    """The 99th percentile of a network input's image channel (``(C, D, H, W)`` array), checked
    against the training range."""
    import numpy as np

    return float(np.percentile(np.asarray(tensor)[0], 99))


@dataclass(frozen=True)
class PreparedScan:
    """One scan made ready for the network, without torch (prediction workers make these): the input
    tensor ``(C, D, H, W)``, the head's scaled tabular inputs (``None`` when it takes none), the
    preprocessing QC (its ``synthetic`` set) and warnings from making the inputs."""

    case_id: str
    tensor: NDArray[np.float32]  # (C, D, H, W)
    tabular: NDArray[np.float32] | None  # (n,)
    qc: JSONDict
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanPreparer:
    """Everything but the network: a risk model's preprocessing, input tensor, radiomics and tabular
    scaling. Picklable and free of torch, so prediction workers make the inputs while the parent runs
    the network."""

    preprocess: PreprocessConfig
    spec: TensorSpec
    tabular: TabularScaling
    params: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], labels: str | None = None) -> ScanPreparer:
        """The preparer of a finetune run folder, from its card alone (its seal checked, and the card against
        the model file by its SHA-256; no torch, no weights loaded): see :mod:`lgerisk.artifacts`."""
        from lgerisk.artifacts import read_risk_model_card
        from lgerisk.models.tabular import TabularScaling

        card = read_risk_model_card(model_dir)
        return cls.from_card(model_dir, card, TabularScaling.from_dict(card.tabular), labels)

    @classmethod
    def from_card(
        cls, model_dir: str | os.PathLike[str], card: RiskModelCard, tabular: TabularScaling, labels: str | None
    ) -> ScanPreparer:
        """The preparer of a model with this card and tabular scaling (``labels``: the masks' label map,
        default the model's)."""
        from lgerisk.data.tensors import TensorSpec
        from lgerisk.preprocess.config import PreprocessConfig

        settings = dict((card.preprocessing or {}).get("settings") or {})
        if labels is not None:
            settings["labels"] = labels
        elif not settings.get("labels") and card.labels:
            settings["labels"] = card.labels
        preprocess = PreprocessConfig.from_dict(settings) if settings else PreprocessConfig()
        params: dict[str, object] = {}
        if tabular.radiomics:
            from lgerisk.radiomics.settings import ROIS, load_params, params_hash

            params = load_params()
            trained = (card.radiomics or {}).get("settings_hash")
            if trained is not None and trained != params_hash(params, tuple(ROIS)):
                raise InputError(
                    f"{model_dir}: the model's radiomics inputs were extracted with other settings "
                    f"({trained}) than lgerisk's defaults, which predict uses; retrain it on a feature "
                    "table from the default extract-radiomics settings."
                )
        return cls(preprocess, TensorSpec.from_dict(card.tensor_spec), tabular, params)

    def _preprocessed(self, case: Case, seg_path: Path | None) -> tuple[PreprocessedCase, JSONDict]:
        """(``PreprocessedCase``, QC) of a raw case, its DICOM SEG written to ``seg_path`` when asked."""
        from lgerisk.io import dicom_seg
        from lgerisk.preprocess.pipeline import preprocess_case

        result = preprocess_case(case, self.preprocess)  # refuses a myocardium on too few slices
        qc: JSONDict = {**result.qc, "synthetic": scan_is_synthetic(case.image, result.qc)}
        if seg_path is not None:
            if dicom_seg.has_dicom_series(case.image) and result.source_labels is not None:
                dicom_seg.write_scar_seg(seg_path, case.image, result.source_labels, str(qc.get("scar_method")))
            else:
                qc["warnings"] = list(json_list(qc.get("warnings"))) + [dicom_seg.NOT_DICOM_WARNING]
        return result, qc

    def _already_preprocessed(self, case: Case, seg_path: Path | None) -> JSONDict | None:
        """The QC of a case of a preprocessed folder made with the model's settings (``None`` for a raw case)."""
        from lgerisk.io import dicom_seg

        done = _preprocessed_qc(case)
        if done is None:
            return None
        if done.get("settings_hash") != self.preprocess.settings_hash():
            raise CaseError(
                f"{case.image}: already preprocessed, but with other settings than the model's; "
                "give the raw scan and mask instead."
            )
        warnings: list[JSONValue] = list(json_list(done.get("warnings"))) + (
            [dicom_seg.PREPROCESSED_WARNING] if seg_path else []
        )
        return {**done, "synthetic": scan_is_synthetic(case.image, done), "warnings": warnings}

    def prepare(self, case: Case, work: Path, seg_path: Path | None = None) -> tuple[Case, JSONDict]:
        """Preprocess ``case`` into ``work`` with the model's settings: (preprocessed case, QC); the QC's
        ``synthetic`` says whether the scan comes from the synthetic generator (its own marker).

        A case of a preprocessed folder (``lgerisk preprocess`` output) is used as it is when it was
        preprocessed with the model's settings (preprocessing it again would misread its labels).
        ``seg_path``: write the scar and grey zone there as a DICOM SEG over the scan's DICOM series (a
        scan that is no DICOM series gets a warning instead)."""
        from lgerisk.io.cohort import Case
        from lgerisk.io.layout import IMAGE_FILE, MASK_FILE, case_dir
        from lgerisk.preprocess.pipeline import write_case

        done = self._already_preprocessed(case, seg_path)
        if done is not None:
            return case, done
        result, qc = self._preprocessed(case, seg_path)
        write_case(result, work)
        folder = case_dir(work, case.case_id)
        return Case(case.case_id, folder / IMAGE_FILE, folder / MASK_FILE, case.time, case.event, case.covariates), qc

    def scan(
        self, case: Case, work: Path, covariates: Mapping[str, object] | None = None, seg_path: Path | None = None
    ) -> PreparedScan:
        """``case`` made ready for the network. A raw scan is preprocessed in memory (written to ``work``
        only when the head needs its radiomics, which pyradiomics reads from files); the tensor is the
        one :func:`~lgerisk.data.tensors.case_tensor` makes of the written files, value for value."""
        from lgerisk.data.tensors import case_tensor, tensor_from_arrays
        from lgerisk.io.scans import image_array, label_array

        covariates = covariates if covariates is not None else case.covariates
        done = self._already_preprocessed(case, seg_path)
        if done is None and not self.tabular.radiomics:
            result, qc = self._preprocessed(case, seg_path)
            image = image_array(result.image, case.image)
            labels = label_array(result.labels, case.mask or case.image)
            tensor = tensor_from_arrays(image, labels, self.spec)
            tabular, warnings, _ = self.head_inputs(None, qc, covariates, case.image)
            return PreparedScan(case.case_id, tensor, tabular, qc, tuple(warnings))
        prepared, qc = (case, done) if done is not None else self.prepare(case, work, seg_path)
        tensor = case_tensor(prepared.image, prepared.mask, self.spec)
        tabular, warnings, _ = self.head_inputs(prepared, qc, covariates, prepared.image)
        return PreparedScan(case.case_id, tensor, tabular, qc, tuple(warnings))

    def head_inputs(
        self,
        prepared: Case | None,
        qc: Mapping[str, object] | None,
        covariates: Mapping[str, object] | None,
        source: TypePath,
    ) -> tuple[NDArray[np.float32] | None, list[str], dict[str, object]]:
        """(the head's scaled tabular inputs ``(n,)`` or ``None``, warnings, the radiomics row) of a case:
        its radiomics (from the preprocessed files of ``prepared``), the scar metrics of its ``qc``, its
        covariates."""
        import numpy as np

        scaling = self.tabular
        radiomics = scar = given_covariates = None
        warnings: list[str] = []
        row: dict[str, object] = {}
        if scaling.radiomics:
            from lgerisk.data.features import head_value, roi_of
            from lgerisk.radiomics.extract import feature_row
            from lgerisk.radiomics.settings import ROIS, params_hash

            rois = tuple(ROIS)
            assert prepared is not None and prepared.mask is not None  # radiomics are read from the files
            row = feature_row(
                prepared.case_id, prepared.image, prepared.mask, self.params, rois, params_hash(self.params, rois)
            )
            radiomics = np.array([[head_value(row, qc or {}, c) for c in scaling.radiomics]], float)
            absent = {
                roi for c in scaling.radiomics if (roi := roi_of(c)) and not head_value(row, {}, f"{roi}__present")
            }
            missing = [  # a ROI the scan does not have (no scar) is what the head's presence indicator is for
                c for c, v in zip(scaling.radiomics, radiomics[0]) if not np.isfinite(v) and roi_of(c) not in absent
            ]
            if missing:
                warnings.append(
                    f"radiomics feature(s) {', '.join(missing)} not measurable in this scan (set to the training mean)"
                )
        if scaling.scar_metrics:
            scar = np.array([[as_number((qc or {}).get(c)) for c in scaling.scar_metrics]], float)
            if not np.isfinite(scar).all():
                raise CaseError(
                    f"{source}: the model's head takes {', '.join(scaling.scar_metrics)} "
                    "and the preprocessing QC of this scan has none."
                )
        if scaling.covariates:
            given = covariates or {}
            missing = [c for c in scaling.covariates if as_number(given.get(c)) != as_number(given.get(c))]
            if missing:
                raise CaseError(
                    f"the model needs covariate(s) {', '.join(missing)}; give them "
                    "with clinical=FILE (case_id plus those columns) or in the cohort's outcomes.",
                    setting="clinical",
                )
            given_covariates = np.array([[as_number(given[c]) for c in scaling.covariates]], float)
        values = scaling.transform(radiomics=radiomics, scar=scar, covariates=given_covariates)
        return (values[0] if scaling.n_inputs else None), warnings, row


@dataclass
class RiskPredictor:
    """A loaded risk model and everything needed to apply it to a raw scan.

    Example:
        >>> predictor = RiskPredictor.load("work/risk")                          # doctest: +SKIP
        >>> predictor.predict_case(scan_case("scan.nii.gz"), Path("/tmp/w"))     # doctest: +SKIP
    """

    model: SurvivalModel
    card: RiskModelCard
    device: torch.device
    model_dir: Path
    preparer: ScanPreparer
    """The model's inputs without the model (picklable, torch-free): what prediction workers run."""

    @classmethod
    def load(cls, model_dir: str | os.PathLike[str], device: str = "cpu", labels: str | None = None) -> RiskPredictor:
        """Load a finetune run folder (``weights_only`` checkpoint) with its settings; an edited card, changed
        weights or a card of a newer lgerisk are refused (``InputError``; see :mod:`lgerisk.artifacts`)."""
        from lgerisk.artifacts import load_risk_model
        from lgerisk.runtime import resolve_device

        torch_device = resolve_device(device)
        model, tabular, card = load_risk_model(model_dir, device=str(torch_device))
        # Contiguous tensors, as in training: with channels-last on the CPU, precision was lost (risks off
        # by up to 0.02 against float64, and thread-count dependent; benchmarks/identity.py measures it).
        preparer = ScanPreparer.from_card(model_dir, card, tabular, labels)
        return cls(model=model, card=card, device=torch_device, model_dir=Path(model_dir), preparer=preparer)

    @property
    def tabular(self) -> TabularScaling:
        """The head's tabular inputs and their scaling."""
        return self.preparer.tabular

    @property
    def preprocess(self) -> PreprocessConfig:
        """The ``PreprocessConfig`` scans are prepared with."""
        return self.preparer.preprocess

    @property
    def spec(self) -> TensorSpec:
        """The ``TensorSpec`` of the network's input."""
        return self.preparer.spec

    @property
    def model_hash(self) -> str:
        """Hash of the model file and the preprocessing settings (a cached prediction is reused only under it)."""
        return model_hash(self.model_dir, self.preprocess)

    @property
    def horizons(self) -> list[float]:
        """The horizons of the survival probabilities."""
        return list(self.card.survival.horizons)

    def prepare(self, case: Case, work: Path, seg_path: Path | None = None) -> tuple[Case, JSONDict]:
        """``case`` preprocessed into ``work`` with the model's settings (see :meth:`ScanPreparer.prepare`)."""
        return self.preparer.prepare(case, work, seg_path)

    def inputs(
        self, prepared: Case, covariates: Mapping[str, object] | None = None, qc: Mapping[str, object] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, object]]:
        """(image tensor (1, C, D, H, W), tabular tensor (1, n) or None, radiomics row with its
        ``__warnings__``) of a preprocessed case; ``qc`` (its preprocessing QC) gives the scar metrics a
        head with scar takes."""
        import torch

        from lgerisk.data.tensors import case_tensor

        tensor = case_tensor(prepared.image, prepared.mask, self.spec)
        values, warnings, row = self.preparer.head_inputs(prepared, qc, covariates, prepared.image)
        image = torch.from_numpy(tensor).unsqueeze(0).to(self.device)
        tab = torch.from_numpy(values[None]).to(self.device) if values is not None else None
        return image, tab, {**row, "__warnings__": warnings} if warnings else row

    def risks(
        self, images: NDArray[np.float32] | torch.Tensor, tabular: NDArray[np.float32] | torch.Tensor | None = None
    ) -> list[float]:
        """The risk scores (log relative hazard) of ``images`` ``(N, C, D, H, W)`` with their head inputs
        ``(N, n)`` (numpy or torch), run ``MODEL_BATCH`` at a time (the last batch padded with zeros), in
        full float32 on a GPU too (:func:`~lgerisk.runtime.full_float32`)."""
        import torch

        from lgerisk.runtime import full_float32

        images = torch.as_tensor(images)
        tabular = torch.as_tensor(tabular) if tabular is not None else None
        out: list[float] = []
        with torch.no_grad(), full_float32(self.device):
            for start in range(0, len(images), MODEL_BATCH):
                chunk = images[start : start + MODEL_BATCH]
                rows = tabular[start : start + MODEL_BATCH] if tabular is not None else None
                used = len(chunk)
                if used < MODEL_BATCH:
                    chunk = torch.cat([chunk, chunk.new_zeros((MODEL_BATCH - used, *chunk.shape[1:]))])
                    if rows is not None:
                        rows = torch.cat([rows, rows.new_zeros((MODEL_BATCH - used, *rows.shape[1:]))])
                chunk = chunk.to(self.device).contiguous()
                scores = self.model(chunk, None if rows is None else rows.to(self.device))
                out += [float(v) for v in scores.float().cpu()[:used]]
        return out

    def risk(
        self, image: NDArray[np.float32] | torch.Tensor, tabular: NDArray[np.float32] | torch.Tensor | None
    ) -> float:
        """The risk score (log relative hazard) of one prepared input (a batch of one)."""
        return self.risks(image, tabular)[0]

    @property
    def trained_on_synthetic(self) -> bool:
        """Whether the model card says the model was trained on synthetic scans."""
        return self.card.synthetic

    @property
    def preprocessing_outdated(self) -> str | None:
        """Why the model's training scans were preprocessed differently from how this lgerisk preprocesses
        with the same settings (an earlier preprocessing version), or None when they match."""
        from lgerisk.preprocess.config import PreprocessConfig

        trained = self.card.preprocessing or {}
        settings, recorded = trained.get("settings"), trained.get("settings_hash")
        if not settings or not recorded:
            return None
        try:
            now = PreprocessConfig.from_dict(settings).settings_hash()
        except LgeriskError:
            return None
        if now == recorded:
            return None
        return (
            "the model was trained on scans preprocessed by an earlier version of lgerisk's preprocessing "
            f"(settings hash {recorded}, now {now}: e.g. another remote-myocardium reference); retrain it"
        )

    def record(
        self, case_id: str, risk: float, qc: JSONDict, p99: float | NDArray[np.float32] | torch.Tensor
    ) -> JSONDict:
        """The prediction record (see the module docstring); ``qc``'s ``synthetic`` says whether the scan
        is synthetic (set by :meth:`prepare`); ``p99``: the input's :func:`image_p99`, or the input itself
        (``(1, C, D, H, W)`` tensor or ``(C, D, H, W)`` array), from which it is taken."""
        import numpy as np

        if not isinstance(p99, (int, float)):
            array = p99.detach().cpu().numpy() if hasattr(p99, "detach") else np.asarray(p99)
            p99 = image_p99(array[0] if array.ndim == 5 else array)

        from lgerisk.evaluation.cox import survival_at
        from lgerisk.evaluation.groups import risk_groups

        survival = self.card.survival
        probabilities = survival_at(
            np.array([risk]),
            np.asarray(survival.baseline_times, float),
            np.asarray(survival.baseline_cumhaz, float),
            np.asarray(self.horizons),
        )[0]
        record: JSONDict = {
            "case_id": case_id,
            "risk_score": round(risk, 6),
            "risk_group": str(risk_groups(np.array([risk]), survival.risk_thresholds)[0]),
        }
        for horizon, value in zip(self.horizons, probabilities):
            record[f"survival_{horizon:g}"] = round(float(value), 6)
        for key in RECORD_FIELDS:
            record[key] = qc.get(key)
        seen = survival.training_risk_range
        extrapolated = bool(seen) and not seen[0] <= risk <= seen[1]
        record["model_method"] = self.card.method
        record["model_trained_on_synthetic"] = self.trained_on_synthetic
        record["scan_synthetic"] = bool(qc.get("synthetic"))
        outside = out_of_range_warnings(qc, p99, self.card.training_ranges)
        reasons: list[JSONValue] = list(outside)
        mismatch = mismatch_reason(
            cast("bool", record["scan_synthetic"]), cast("bool", record["model_trained_on_synthetic"])
        )
        if mismatch is not None:
            reasons.append(mismatch)
        if self.preprocessing_outdated is not None:
            reasons.append(self.preprocessing_outdated)
        trained_methods = self.tabular.scar_methods
        reads_scar = bool(self.tabular.scar_metrics or self.tabular.radiomics)
        if reads_scar and trained_methods and qc.get("scar_method") not in trained_methods:
            reasons.append(
                f"the model's head takes scar measured by {' or '.join(trained_methods)}, and this "
                f"scan's is measured by {qc.get('scar_method')} (e.g. its mask has no scar labels)"
            )
        from lgerisk.preprocess.scar import scar_check_reason

        # a low-confidence derived scar: the model's scar inputs may be wrong (it reads the QC, never changes it)
        scar_check = scar_check_reason(cast("dict[str, object]", qc))
        if scar_check is not None:
            reasons.append(scar_check)
        record["reliable"] = not reasons
        record["unreliable_reasons"] = reasons
        if reasons:
            record["risk_group"] = OUT_OF_RANGE  # the numeric score stays in its column
        record["warnings"] = reasons + list(json_list(qc.get("warnings")))
        if extrapolated:
            cast("list[JSONValue]", record["warnings"]).append(
                f"risk score {risk:.3g} is outside the training cohort's range "
                f"{seen[0]:.3g} to {seen[1]:.3g}: the survival estimates are extrapolated"
            )
        return record

    def predict_case(
        self, case: Case, work: Path, covariates: Mapping[str, object] | None = None, seg_path: Path | None = None
    ) -> Prediction:
        """Preprocess, extract what the model needs, and predict one case (``seg_path``: see :meth:`prepare`)."""
        return self.predict_scans([self.preparer.scan(case, work, covariates, seg_path)])[0]

    def predict_scans(self, scans: list[PreparedScan]) -> list[Prediction]:
        """The predictions of prepared scans (the network run ``MODEL_BATCH`` at a time); each one's ``values``
        is the record ``predict`` writes."""
        import numpy as np

        if not scans:
            return []
        images = np.stack([scan.tensor for scan in scans])
        tabular = (  # every scan of one model has head inputs, or none has
            np.stack([cast("NDArray[np.float32]", scan.tabular) for scan in scans])
            if scans[0].tabular is not None
            else None
        )
        records = []
        for scan, risk in zip(scans, self.risks(images, tabular)):
            record = self.record(scan.case_id, risk, scan.qc, image_p99(scan.tensor))
            cast("list[JSONValue]", record["warnings"]).extend(list(scan.warnings))
            records.append(Prediction.from_record(record))
        return records


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
    values: JSONDict = field(repr=False, compare=False)

    @classmethod
    def from_record(cls, record: JSONDict) -> Prediction:
        """From a prediction record (a dict as ``predict`` writes it to JSON; kept whole as ``values``)."""

        def number(key: str) -> float | None:
            value = record.get(key)
            return None if value is None else json_float(value)

        def text(key: str) -> str | None:
            value = record.get(key)
            return None if value is None else str(value)

        survival = {float(k.split("_", 1)[1]): json_float(v) for k, v in record.items() if k.startswith("survival_")}
        return cls(
            case_id=str(record["case_id"]),
            risk_score=json_float(record["risk_score"]),
            risk_group=str(record["risk_group"]),
            survival=survival,
            scar_percent=number("scar_percent"),
            greyzone_percent=number("greyzone_percent"),
            scar_method=text("scar_method"),
            model_method=text("model_method"),
            model_trained_on_synthetic=bool(record.get("model_trained_on_synthetic")),
            scan_synthetic=bool(record.get("scan_synthetic")),
            reliable=bool(record.get("reliable")),
            unreliable_reasons=tuple(str(r) for r in json_list(record.get("unreliable_reasons"))),
            warnings=tuple(str(w) for w in json_list(record.get("warnings"))),
            values=dict(record),
        )


def _preprocessed_qc(case: Case) -> JSONDict | None:
    """The QC record of a case that is already preprocessed (``cases/ID/{image,mask}.nii.gz`` + ``qc.json``)."""
    from lgerisk.io.layout import IMAGE_FILE, MASK_FILE, read_case_qc

    image = Path(case.image)
    if image.name != IMAGE_FILE or case.mask is None or Path(case.mask) != image.parent / MASK_FILE:
        return None
    return read_case_qc(image)


def as_number(value: object) -> float:
    """``float(value)``, NaN where it is not a number."""
    try:
        return float(cast("float | str", value))  # whatever float() refuses is NaN
    except (TypeError, ValueError):
        return float("nan")


def out_of_range_warnings(qc: Mapping[str, object], image_p99: float, ranges: Mapping[str, list[float]]) -> list[str]:
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
        value = float(cast("float", values[key]))  # a number: checked above
        if value < low or value > high:
            suffix = f" {unit}" if unit else ""
            digits = 3  # enough digits that the value and the bound it crosses read differently
            while digits < 12 and f"{value:.{digits}g}" == f"{low if value < low else high:.{digits}g}":
                digits += 1
            out.append(
                f"{label} {value:.{digits}g}{suffix} is outside the training range "
                f"{low:.{digits}g}-{high:.{digits}g}{suffix}"
            )
    return out


def check_device(device: str) -> None:
    """``InputError`` now for a device that is not there (``"cpu"`` needs no check, and no torch import)."""
    if device.strip().lower() != "cpu":
        from lgerisk.runtime import resolve_device

        resolve_device(device)


def model_hash(model_dir: str | os.PathLike[str], preprocess: PreprocessConfig) -> str:
    """Hash of a model folder's model file and the preprocessing settings it is served with (a stored
    prediction is reused only under it)."""
    digest = hashlib.sha256((Path(model_dir) / MODEL_FILE).read_bytes())
    digest.update(preprocess.settings_hash().encode())
    return digest.hexdigest()[:16]


def load_predictor(model_dir: str, device: str, labels: str | None) -> RiskPredictor:
    """One predictor per process (the model is loaded once, not once per scan); a model
    file rewritten since is loaded afresh."""
    try:
        stamp = (Path(model_dir) / MODEL_FILE).stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _cached_predictor(model_dir, device, labels, stamp)


@lru_cache(maxsize=2)
def _cached_predictor(model_dir: str, device: str, labels: str | None, stamp: int) -> RiskPredictor:
    return RiskPredictor.load(model_dir, device=device, labels=labels)
