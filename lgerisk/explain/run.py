"""Explaining predictions: the library behind ``lgerisk explain``.

Per scan, ``OUT/ID/``::

    report.html               one self-contained page (opens offline): summary, pictures, tables; it
                              leads with "out of range" when the prediction is not reliable (and then
                              gives no survival figure, only why), and says whether the scan is
                              synthetic and whether the model was trained on synthetic data (words true
                              for that pair)
    gradcam.png               Grad-CAM of the risk on the last 3D block, one panel per real slice of the
                              scan (its own slice numbers, base to apex); padding and voxels outside the
                              scan's field of view carry no attribution
    integrated_gradients.png  integrated gradients of the risk w.r.t. the image (blurred-scan baseline,
                              averaged over the encoder's sub-stride translations so the stride's dot grid
                              is gone; see lgerisk.explain.attribution), drawn the same way
    prediction.json           the prediction record (see lgerisk.predict.run) plus the attribution checks,
                              the attribution sanity check's result among them
    features.csv              the radiomics features most aligned with the model's risk over its
                              training cohort (r with 95 % CI, embedding R²) and this scan's percentile
    scar_seg.dcm              with dicom_seg, for a scan that is a DICOM series: its scar and grey zone
                              as a DICOM SEG over that series (see lgerisk.io.dicom_seg)

Once per run, ``OUT/attribution_check.json``: the attribution sanity check (Adebayo et al.'s model-parameter
randomisation test of both maps, on the first scan by case id that can be prepared; reused while the model,
settings and that scan are unchanged). Every report states its result, and a map that fails is flagged.

For a cohort, also ``OUT/cohort.html`` with the embedding <-> radiomics correlation heatmap,
the risk-tertile Kaplan-Meier plot (when outcomes are known) and every case's prediction, and
``OUT/predictions.csv`` (survival numbers kept beside ``reliable``; the page shows none for a scan that is
not reliable). Cases already explained with the same model are skipped on rerun.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias, TypedDict, cast

from lgerisk.batch import BatchReport, Shard, collect_errors, run_batch
from lgerisk.errors import InputError
from lgerisk.io.atomic import write_csv, write_json
from lgerisk.io.cohort import Case
from lgerisk.reporting import SILENT, Reporter
from lgerisk.runtime import full_float32

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pandas as pd
    import torch

    from lgerisk.inference import RiskPredictor
    from lgerisk.models.survival import SurvivalModel
    from lgerisk.models.tabular import TabularScaling
    from lgerisk.types import JSONDict, JSONScalar, JSONValue

TOP_FEATURES = 10
RECORD_FILE = "prediction.json"
CHECK_FILE = "attribution_check.json"
SANITY_TRIES = 3
"""Scans (first by case id) tried in turn for the attribution sanity check, until one can be prepared."""
EXPLAIN_VERSION = "6"
"""Changes whenever an explanation's record or pictures change (explained cases are then redone)."""


class MapCheck(TypedDict, total=False):
    """One map's attribution sanity check (``lgerisk.explain.attribution.SanityCheck.as_dict``)."""

    method: str
    status: str
    spearman: float | None
    spearman_abs: float | None
    randomisations: int
    threshold: float


class AttributionCheck(TypedDict, total=False):
    """The run's attribution sanity check (:func:`attribution_sanity`, the ``check`` of ``attribution_check.json``):
    ``status`` ``run``, with the test and each map's result, or ``not run``, with the ``reason``."""

    status: str
    reason: str
    case_id: str
    test: str
    seeds: list[int]
    threshold: float
    gradcam: MapCheck
    integrated_gradients: MapCheck


class ExplanationPages(TypedDict, total=False):
    """The pages of an explain run (:func:`explain_cases`): each case's report by case id, and with a cohort,
    the cohort page and its predictions table."""

    cases: dict[str, str]
    cohort: str
    predictions: str


class _InputsKey(TypedDict):
    """What an explanation depends on beyond the model (:func:`_inputs_key`)."""

    image_sha256: str | None
    mask_sha256: str | None
    covariates: dict[str, JSONScalar]


class _Drawn(TypedDict):
    """The settings both attribution montages of a scan are drawn with."""

    slice_numbers: list[int]
    inside: np.ndarray
    synthetic: bool
    model_synthetic: bool


RiskTerms: TypeAlias = dict[str, "float | list[tuple[str, str, float]]"]
"""A scan's risk split by the model's linear head (:func:`risk_terms`): a sum a block, and ``inputs``, the rows
(block, input, term)."""


def _reference(model_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(concept alignment table, training feature table) saved by finetune."""
    import pandas as pd

    concepts_path, reference_path = model_dir / "concepts.csv", model_dir / "reference_features.csv"
    for path in (concepts_path, reference_path):
        if not path.is_file():
            raise InputError(
                f"{model_dir}: risk model folder lacks {path.name} (written by lgerisk finetune); "
                "retrain it with this version."
            )
    concepts = pd.read_csv(concepts_path)
    reference = pd.read_csv(reference_path, dtype={"case_id": str}, low_memory=False)
    return concepts, reference


def explain_case(
    predictor: RiskPredictor,
    case: Case,
    out: Path,
    concepts: pd.DataFrame,
    reference: pd.DataFrame,
    steps: int = 32,
    key: str = "",
    params: Mapping[str, object] | None = None,
    dicom_seg: bool = False,
    check: AttributionCheck | None = None,
) -> JSONDict:
    """Predict and explain one scan into ``out/ID/``; returns the record (with embedding and features).
    ``params``: the radiomics extraction settings (default: lgerisk's); ``dicom_seg``: also write the scar
    and grey zone as ``out/ID/scar_seg.dcm`` over the scan's DICOM series; ``check``: the run's attribution
    sanity check (:func:`attribution_sanity`), stated in the report and recorded."""
    import numpy as np
    import pandas as pd

    from lgerisk.data.tensors import TensorSpec, case_tensor
    from lgerisk.evaluation.concepts import case_percentiles
    from lgerisk.explain.attribution import (
        grad_cam,
        inplane_stride,
        integrated_gradients_attribution,
        myocardium_concentration,
        stride_grid_share,
    )
    from lgerisk.explain.montage import attribution_montage
    from lgerisk.explain.report import html_report, sanity_sentence, summary_text
    from lgerisk.explain.slices import field_of_view, source_of, tensor_view
    from lgerisk.inference import as_number, image_p99
    from lgerisk.io.dicom_seg import SEG_FILE
    from lgerisk.radiomics.extract import feature_row
    from lgerisk.radiomics.settings import ROIS, load_params, params_hash

    folder = out / case.case_id
    (folder / RECORD_FILE).unlink(missing_ok=True)
    (folder / SEG_FILE).unlink(missing_ok=True)
    prepared, qc = predictor.prepare(case, out / ".work", folder / SEG_FILE if dicom_seg else None)
    image, tabular, inputs_row = predictor.inputs(prepared, case.covariates, qc)
    risk = predictor.risk(image, tabular)
    record = predictor.record(case.case_id, risk, qc, image_p99(image[0].cpu().numpy()))
    cast("list[JSONValue]", record["warnings"]).extend(cast("list[str]", inputs_row.get("__warnings__", [])))
    with full_float32(predictor.device):
        terms = risk_terms(predictor.model, predictor.tabular, image, tabular)
    if predictor.tabular.n_inputs:
        record["risk_terms"] = {block: cast("float", value) for block, value in terms.items() if block != "inputs"}
    scan_synthetic = cast("bool", record["scan_synthetic"])
    model_synthetic = cast("bool", record["model_trained_on_synthetic"])

    masks = case_tensor(
        prepared.image,
        prepared.mask,
        TensorSpec(slices=predictor.spec.slices, size=predictor.spec.size, channels=("image", "myocardium", "scar")),
    )
    view = tensor_view(
        field_of_view(prepared.image, source_of(case, prepared)),
        predictor.spec.slices,
        predictor.spec.size,
        slices_flipped=bool(qc.get("slices_flipped")),
    )
    real, inside = slice(0, view.count), view.inside
    volume, myocardium, scar = masks[0], masks[1] > 0.5, masks[2] > 0.5
    with full_float32(predictor.device):  # the attributions in the same float32 as the risk
        cam = grad_cam(predictor.model, image, tabular)
        ig = integrated_gradients_attribution(predictor.model, image, tabular, steps=steps)
        stride = inplane_stride(predictor.model, image)
    record["attribution"] = {
        "gradcam_myocardium_ratio": _finite(myocardium_concentration(cam[inside], myocardium[inside])),
        "ig_myocardium_ratio": _finite(myocardium_concentration(ig.values[inside], myocardium[inside])),
        "ig_relative_delta": _finite(ig.relative_delta),
        "ig_steps": steps,
        "slices_shown": list(view.numbers),
        "note": "ratio = mean |attribution| per voxel inside the myocardium / outside it, over the voxels that "
        "show the scan (padding and background fill left out); slices_shown: the scan's own slice "
        "numbers of the montage panels, base to apex; ig_grid_share: the share of the map that is a grid "
        "of the encoder's in-plane stride (lgerisk.explain.attribution.stride_grid_share); "
        "risk_translation_sd: SD of the risk when the scan is moved by less than that stride; *_sanity: "
        "the model-parameter randomisation test (Spearman between the trained and a randomised model's "
        "map; fails at |rho| >= its threshold)",
        "ig_baseline": ig.baseline,
        "ig_translations": ig.translations,
        "ig_evaluations": ig.steps,
        "ig_grid_share": _finite(stride_grid_share(ig.values, stride)),
        "encoder_stride": stride,
        "risk_translation_sd": _finite(ig.risk_translation_sd),
        **_sanity_fields(check),
    }
    title = f"{case.case_id}: risk {risk:.2f} ({record['risk_group']})"
    drawn: _Drawn = {
        "slice_numbers": list(view.numbers),
        "inside": inside[real],
        "synthetic": scan_synthetic,
        "model_synthetic": model_synthetic,
    }
    flagged = {
        method: " — FAILED the attribution sanity check: it hardly changes when the model's weights are random"
        if cast("JSONDict", record["attribution"]).get(f"{method}_sanity") == "failed"
        else ""
        for method in ("gradcam", "ig")
    }
    gradcam_png = attribution_montage(
        volume[real],
        cam[real],
        myocardium[real],
        scar[real],
        folder / "gradcam.png",
        f"Grad-CAM — {title}",
        label="Grad-CAM (raises risk)",
        **drawn,
    )
    ig_png = attribution_montage(
        volume[real],
        ig.values[real],
        myocardium[real],
        scar[real],
        folder / "integrated_gradients.png",
        f"Integrated gradients — {title}",
        label="integrated gradients (signed)",
        **drawn,
    )

    params = params if params is not None else load_params()
    rois = tuple(ROIS)
    # a prepared case has its mask (ScanPreparer.prepare)
    row = feature_row(
        case.case_id, prepared.image, cast("Path", prepared.mask), params, rois, params_hash(params, rois)
    )
    features = concepts["feature"].tolist()
    numeric = {f: as_number(row.get(f)) for f in features}
    percentiles = case_percentiles(
        pd.Series(numeric, dtype=float), reference[[f for f in features if f in reference.columns]]
    )
    top = concepts.head(TOP_FEATURES).copy()
    top["this_scan"] = [numeric.get(f) for f in top["feature"]]
    top["percentile"] = [percentiles.get(f, np.nan) for f in top["feature"]]
    write_csv(folder / "features.csv", top)
    summary = summary_text(record, concepts, percentiles, notes=[sanity_sentence(check)])
    shown = {k: v for k, v in record.items() if k not in ("attribution",)}
    html_report(
        folder / "report.html",
        f"lgerisk explanation: {case.case_id}",
        summary,
        shown,
        {
            "Grad-CAM on the last 3D block (regions that raise the risk; myocardium and scar outlined)"
            + flagged["gradcam"]: gradcam_png,
            "Integrated gradients w.r.t. the image (red raises, blue lowers the risk)" + flagged["ig"]: ig_png,
        },
        {
            "Radiomics features most aligned with the model's risk over its training cohort": top,
            **(
                {
                    "Where this scan's risk comes from (the head's terms; they add up to the risk)": pd.DataFrame(
                        terms["inputs"], columns=["block", "input", "term"]
                    )
                }
                if predictor.tabular.n_inputs
                else {}
            ),
            "Attribution checks": pd.DataFrame([record["attribution"]]),
        },
        synthetic=scan_synthetic,
    )
    with full_float32(predictor.device):
        embedding = (
            predictor.model.image_encoder(image).detach().float().cpu().numpy()[0]
            if predictor.model.config.use_image
            else np.zeros(0)
        )
    stored: JSONDict = {**record, "summary": summary}
    write_json(
        folder / RECORD_FILE,
        {
            "key": key,
            **_inputs_key(case),
            "record": stored,
            "embedding": embedding.tolist(),
            "features": {k: v for k, v in numeric.items() if v == v},
        },
        sort_keys=False,
    )
    return stored


def risk_terms(
    model: SurvivalModel, scaling: TabularScaling, image: torch.Tensor, tabular: torch.Tensor | None
) -> RiskTerms:
    """A scan's risk split by the model's linear head: the sum of each block's terms (``image``, ``radiomics``,
    ``scar metrics``, ``covariates``, the blocks the model has) and ``inputs``, a row (block, input, term) per
    input, the image first and each block's inputs by the size of their term.

    Example:
        >>> terms = risk_terms(predictor.model, predictor.tabular, image, tabular)   # doctest: +SKIP
        >>> sum(v for k, v in terms.items() if k != "inputs") == risk                 # doctest: +SKIP
    """
    image_term, tabular_terms = model.head_terms(image if model.config.use_image else None, tabular)
    names = [
        *(("radiomics", c) for c in scaling.radiomics),
        *(("scar metrics", c) for c in scaling.scar_metrics),
        *(("covariates", c) for c in scaling.covariates),
    ]
    out: RiskTerms = {}
    rows: list[tuple[str, str, float]] = []
    if model.config.use_image:
        out["image"] = image_term
        rows.append(("image", "embedding", image_term))
    for block in ("radiomics", "scar metrics", "covariates"):
        mine = [(name, term) for (kind, name), term in zip(names, tabular_terms) if kind == block]
        if mine:
            out[block] = sum(term for _, term in mine)
            rows += [(block, name, term) for name, term in sorted(mine, key=lambda item: -abs(item[1]))]
    out["inputs"] = rows
    return out


def _sanity_fields(check: AttributionCheck | None) -> JSONDict:
    """The attribution sanity check as flat fields of a case's attribution record."""
    if not check or check.get("status") != "run":
        reason = (check or {}).get("reason") or "not asked for"
        return {"sanity_check": f"not run: {reason}"}
    fields: JSONDict = {"sanity_check": "run", "sanity_scan": check.get("case_id")}
    for method, result in (("gradcam", check.get("gradcam") or {}), ("ig", check.get("integrated_gradients") or {})):
        fields[f"{method}_sanity"] = result.get("status")
        fields[f"{method}_sanity_spearman"] = result.get("spearman")
        fields[f"{method}_sanity_spearman_abs"] = result.get("spearman_abs")
    return fields


def _sanity_of_case(predictor: RiskPredictor, case: Case, work: Path, steps: int) -> AttributionCheck:
    """Adebayo et al.'s model-parameter randomisation test of both maps on ``case`` (prepared in ``work``)."""
    from lgerisk.explain.attribution import (
        SANITY_SEEDS,
        SANITY_THRESHOLD,
        grad_cam,
        integrated_gradients,
        parameter_randomisation_check,
    )
    from lgerisk.explain.slices import field_of_view, source_of, tensor_view

    prepared, qc = predictor.prepare(case, work)
    image, tabular, _ = predictor.inputs(prepared, case.covariates, qc)
    inside = tensor_view(
        field_of_view(prepared.image, source_of(case, prepared)),
        predictor.spec.slices,
        predictor.spec.size,
        slices_flipped=bool(qc.get("slices_flipped")),
    ).inside
    model = predictor.model
    with full_float32(predictor.device):
        gradcam = parameter_randomisation_check(lambda m: grad_cam(m, image, tabular), model, "Grad-CAM", region=inside)
        ig = parameter_randomisation_check(
            lambda m: integrated_gradients(m, image, tabular, steps=steps),
            model,
            "integrated gradients",
            region=inside,
        )
    return {
        "status": "run",
        "case_id": case.case_id,
        "test": "model-parameter randomisation (Adebayo et al., NeurIPS 2018): the image encoder's weights "
        "re-initialised all at once (its own initialisation; the head kept), Spearman rank correlation between "
        "the trained and the randomised model's map over the voxels that show the scan, the one farthest from "
        "0 over the seeds; a map fails when |rho| reaches the threshold",
        "seeds": list(SANITY_SEEDS),
        "threshold": SANITY_THRESHOLD,
        "gradcam": cast("MapCheck", gradcam.as_dict()),
        "integrated_gradients": cast("MapCheck", ig.as_dict()),
    }


def attribution_sanity(
    predictor: RiskPredictor, cases: list[Case], out: Path, key: str, steps: int
) -> AttributionCheck:
    """The attribution sanity check of a run, once: on the first of ``cases`` by case id that can be prepared
    (up to ``SANITY_TRIES``), stored in ``out/attribution_check.json`` and reused while ``key`` (model,
    settings, explain version) and that scan's inputs are unchanged. ``{"status": "not run", "reason": ...}``
    when no scan could be prepared."""
    import tempfile

    from lgerisk.errors import CaseError

    path = out / CHECK_FILE
    ordered = sorted(cases, key=lambda c: c.case_id)[:SANITY_TRIES]
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    for case in ordered:
        if (
            isinstance(stored, dict)
            and stored.get("key") == key
            and stored.get("case_id") == case.case_id
            and all(stored.get(k) == v for k, v in _inputs_key(case).items())
        ):
            return cast("AttributionCheck", dict(stored["check"]))  # as written below
    failures = []
    for case in ordered:
        try:
            with tempfile.TemporaryDirectory(prefix=".sanity-", dir=out) as work:
                check = _sanity_of_case(predictor, case, Path(work), steps)
        except (CaseError, InputError) as exc:
            failures.append(f"{case.case_id}: {exc}")
            continue
        write_json(path, {"key": key, "case_id": case.case_id, **_inputs_key(case), "check": check}, sort_keys=False)
        return check
    return {"status": "not run", "reason": "; ".join(failures) if failures else "no scans"}


def _finite(value: float) -> float | None:
    return float(value) if value == value and abs(value) != float("inf") else None


def _inputs_key(case: Case) -> _InputsKey:
    """What an explanation depends on beyond the model: the scan, its mask, its covariates."""
    from lgerisk.io.layout import source_hash

    covariates = {
        str(k): (None if isinstance(v, float) and v != v else v)
        for k, v in sorted((case.covariates or {}).items())
        if isinstance(v, (int, float, str))
    }
    return {"image_sha256": source_hash(case.image), "mask_sha256": source_hash(case.mask), "covariates": covariates}


def _done(case: Case, out: Path, key: str, dicom_seg: bool = False) -> bool:
    from lgerisk.io.dicom_seg import SEG_FILE, has_dicom_series

    if dicom_seg and has_dicom_series(case.image) and not (out / case.case_id / SEG_FILE).is_file():
        return False
    try:
        stored = json.loads((out / case.case_id / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    current = _inputs_key(case)
    return (
        stored.get("key") == key
        and (out / case.case_id / "report.html").is_file()
        and all(stored.get(k) == v for k, v in current.items())
    )


def _explain_one(
    case: Case,
    model_dir: str,
    device: str,
    labels: str | None,
    out: Path,
    steps: int,
    key: str,
    concepts: pd.DataFrame,
    reference: pd.DataFrame,
    params: Mapping[str, object],
    threads: int | None = None,
    dicom_seg: bool = False,
    keep_freed_memory: bool = False,
    check: AttributionCheck | None = None,
) -> JSONDict:
    from lgerisk.inference import load_predictor

    if keep_freed_memory:  # the network's passes reuse freed pages (this process: a worker or the command's)
        from lgerisk.runtime import reuse_freed_memory

        reuse_freed_memory()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return explain_case(
        load_predictor(model_dir, device, labels), case, out, concepts, reference, steps, key, params, dicom_seg, check
    )


def explain_cases(
    cases: list[Case],
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    device: str = "cpu",
    labels: str | None = None,
    steps: int = 32,
    jobs: int = 1,
    shard: Shard = Shard(),
    cohort: bool = False,
    clinical: Mapping[str, Mapping[str, JSONScalar]] | None = None,
    dicom_seg: bool = False,
    reporter: Reporter = SILENT,
    keep_freed_memory: bool = False,
    sanity_check: bool = True,
) -> tuple[BatchReport, ExplanationPages]:
    """Explain every case into ``out`` (resumable); with ``cohort`` also the cohort page. ``clinical``
    gives covariates by case id (for models trained with covariates); ``dicom_seg``: also each DICOM-series
    scan's scar and grey zone as ``out/ID/scar_seg.dcm``. ``keep_freed_memory``: the processes that run the
    network keep freed memory for the next pass, for good (``lgerisk.runtime.reuse_freed_memory``;
    ``lgerisk explain`` sets it). ``sanity_check``: run the attribution sanity check once
    (:func:`attribution_sanity`) and state it in every report."""
    import dataclasses

    from lgerisk.io.dicom_seg import check_seg_sources

    if dicom_seg:
        check_seg_sources([case.image for case in cases], "explain")

    from lgerisk.inference import load_predictor

    if clinical:
        cases = [
            dataclasses.replace(c, covariates={**(c.covariates or {}), **clinical[c.case_id]})
            if c.case_id in clinical
            else c
            for c in cases
        ]
    out = Path(out)
    from lgerisk.radiomics.settings import load_params

    predictor = load_predictor(str(model_dir), device, labels)  # a bad model fails here, once
    concepts, reference = _reference(Path(model_dir))  # read once, not per case
    key = predictor.model_hash + (labels or "") + f"-ig{steps}-e{EXPLAIN_VERSION}" + ("" if sanity_check else "-nc")
    out.mkdir(parents=True, exist_ok=True)
    check: AttributionCheck = (
        attribution_sanity(predictor, cases, out, key, steps)
        if sanity_check
        else {"status": "not run", "reason": "not asked for"}
    )
    from lgerisk.batch import worker_threads

    work = partial(
        _explain_one,
        model_dir=str(model_dir),
        device=device,
        labels=labels,
        out=out,
        steps=steps,
        key=key,
        concepts=concepts,
        reference=reference,
        params=load_params(),
        threads=worker_threads(jobs),
        dicom_seg=dicom_seg,
        keep_freed_memory=keep_freed_memory,
        check=check,
    )
    report = run_batch(
        shard.select(cases),
        work,
        partial(_done, out=out, key=key, dicom_seg=dicom_seg),
        out,
        jobs=jobs,
        description="explain",
        reporter=reporter,
        start_method="spawn",
    )
    collect_errors(out)
    pages: ExplanationPages = {
        "cases": {
            c.case_id: str(out / c.case_id / "report.html")
            for c in cases
            if (out / c.case_id / "report.html").is_file()
        }
    }
    if cohort:
        pages.update(cohort_page(cases, predictor, out, key, check))
    return report, pages


def cohort_page(
    cases: list[Case], predictor: RiskPredictor, out: Path, key: str, check: AttributionCheck | None = None
) -> ExplanationPages:
    """The cohort view: predictions table, embedding <-> radiomics heatmap, risk-tertile KM plot; ``check``: the
    run's attribution sanity check, stated in the summary (and each scan's in predictions.csv)."""
    import numpy as np
    import pandas as pd

    from lgerisk.evaluation.concepts import correlation_heatmap
    from lgerisk.evaluation.plots import km_by_risk_group
    from lgerisk.explain.report import html_report, sanity_sentence, withhold_survival
    from lgerisk.inference import LIST_FIELDS, OUT_OF_RANGE
    from lgerisk.io.provenance import cohort_sentence
    from lgerisk.preprocess.scar import SCAR_CHECK_REASON

    records, embeddings, features, outcomes = [], [], [], []
    outside = scar_checks = 0
    for case in cases:
        try:
            stored = json.loads((out / case.case_id / RECORD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if stored.get("key") != key:
            continue
        record = {k: v for k, v in stored["record"].items() if k not in ("summary", "attribution", "risk_terms")}
        for block, term in (stored["record"].get("risk_terms") or {}).items():  # a column a block, for pandas
            record[f"risk_term_{block.replace(' ', '_')}"] = term
        attribution = stored["record"].get("attribution") or {}
        for method in ("gradcam", "ig"):  # the sanity check this scan's report states
            record[f"{method}_sanity"] = attribution.get(f"{method}_sanity")
        reasons = [str(r) for r in record.get("unreliable_reasons") or []]
        outside += any(not r.startswith(SCAR_CHECK_REASON) for r in reasons)
        scar_checks += any(r.startswith(SCAR_CHECK_REASON) for r in reasons)
        for name in LIST_FIELDS:
            record[name] = "; ".join(record.get(name) or [])
        records.append(record)
        embeddings.append(stored["embedding"])
        features.append(stored["features"])
        outcomes.append((case.time, case.event))
    if not records:
        return {}
    table = pd.DataFrame(records)
    write_csv(out / "predictions.csv", table)
    scan_flags = [bool(flag) for flag in table["scan_synthetic"]]
    synthetic = bool(scan_flags) and all(scan_flags)  # what the cohort pictures show
    banners = [sentence for sentence in (cohort_sentence(scan_flags, predictor.trained_on_synthetic),) if sentence]
    if scar_checks:
        banners.insert(
            0,
            f"CHECK THE SCAR: the derived scar of {scar_checks} of {len(table)} scans has low confidence; the "
            "model reads that scar, so they get no risk group until a reader has checked it (see "
            "unreliable_reasons).",
        )
    if outside:
        banners.insert(
            0,
            f"OUT OF RANGE: {outside} of {len(table)} scans lie outside what the model was "
            "trained on; their risk group reads 'out of range' and their numbers are not reliable "
            "(see unreliable_reasons).",
        )
    images: dict[str, Path] = {}
    embedding = np.asarray(embeddings, float)
    frame = pd.DataFrame(features, index=table["case_id"])
    if embedding.ndim == 2 and embedding.shape[1] and len(records) >= 5:
        images["Embedding principal components vs radiomics features (Pearson r over this cohort)"] = (
            correlation_heatmap(frame, embedding, out / "embedding_radiomics.png", synthetic=synthetic)
        )
    known = [
        (t, e, g)
        for (t, e), g in zip(outcomes, table["risk_group"])
        if t is not None and e is not None and g != OUT_OF_RANGE
    ]  # no group, no curve
    if len(known) >= 3:
        time, event, groups = (np.asarray(v) for v in zip(*known))
        images["Kaplan-Meier by predicted risk group (thresholds: the training cohort's tertiles)"] = km_by_risk_group(
            time.astype(float),
            event.astype(int),
            groups,
            out / "km_risk_groups.png",
            "Observed survival by predicted risk group",
            synthetic=synthetic,
        )
    counts = table["risk_group"].value_counts().to_dict()
    summary = (
        f"{len(table)} scans explained with model '{predictor.card.method}'. Risk groups: "
        + ", ".join(f"{counts.get(g, 0)} {g}" for g in ("low", "intermediate", "high", OUT_OF_RANGE))
        + ". Each scan's own report is in its folder."
    )
    if check is not None:
        summary += "\n" + sanity_sentence(check)
    html_report(
        out / "cohort.html",
        "lgerisk cohort explanation",
        summary,
        {"scans": len(table)},
        images,
        {"Predictions": withhold_survival(table)},  # predictions.csv keeps the numbers beside `reliable`
        synthetic=synthetic,
        banners=banners,
    )
    return {"cohort": str(out / "cohort.html"), "predictions": str(out / "predictions.csv")}
