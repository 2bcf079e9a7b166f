"""The card of a risk model (``model_card.json`` of ``lgerisk finetune``): what predict and explain need
(survival baseline, risk tertiles, training ranges, tabular inputs) and what a reader needs (data, settings,
the cross-validated metrics, the radiomics concepts aligned with the model's risk). ``write_card`` seals it
(``card_sha256``): an edit after it is written is refused on loading (:mod:`lgerisk.artifacts`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.artifacts import MODEL_FILE, file_sha256
from lgerisk.cards import INTENDED_USE, RISK_MODEL_FORMAT, EncoderCard, RiskModelCard
from lgerisk.training.survival_fit import FittedDeep, Workspace, embed
from lgerisk.version import __version__

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

    from lgerisk.training.data import PreparedData
    from lgerisk.training.finetune_config import FinetuneConfig, Split
    from lgerisk.training.methods import FittedTabular
    from lgerisk.types import JSONDict, TypePath

__all__ = ["concepts_table", "json_rows", "risk_model_card", "training_ranges"]


def json_rows(table: pd.DataFrame) -> list[JSONDict]:
    import math

    rows = []
    for record in table.to_dict(orient="records"):
        rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()})
    return rows


def concepts_table(
    final: FittedDeep | FittedTabular,
    workspace: Workspace,
    ids: list[str],
    risk: NDArray[np.float64],
    features: pd.DataFrame,
) -> pd.DataFrame:
    """Radiomics features aligned with the final model's risk and embedding over its training cases."""
    import numpy as np

    from lgerisk.data.features import feature_columns
    from lgerisk.evaluation.concepts import concept_alignment

    columns = feature_columns(features, cases=ids)
    embedding = None
    if isinstance(final, FittedDeep) and final.model.config.use_image:
        embedding = embed(final.model, [workspace.tensors[c] for c in ids], workspace.device)
    table = concept_alignment(
        features.loc[ids, columns], np.asarray(risk, float), embedding, seed=workspace.config.seed
    )
    return table


def training_ranges(
    prepared: PreparedData, ids: list[str], tensors: Mapping[str, NDArray[np.float32]]
) -> dict[str, list[float]]:
    """Ranges of what a new scan is checked against (predict warns outside them)."""
    import numpy as np

    from lgerisk.io.layout import QC_FILE

    keys = (
        "slice_spacing_mm",
        "slice_count",
        "myocardium_volume_ml",
        "remote_mean",
        "blood_pool_mean",
        "scar_percent",
        "greyzone_percent",
    )
    values: dict[str, list[float]] = {k: [] for k in keys}
    values["inplane_spacing_mm"] = []
    values["image_p99"] = []
    by_id = {case.case_id: case for case in prepared.cases}
    for case_id in ids:
        qc_path = Path(by_id[case_id].image).parent / QC_FILE
        if qc_path.is_file():
            qc = json.loads(qc_path.read_text(encoding="utf-8"))
            for key in keys:
                if isinstance(qc.get(key), (int, float)):
                    values[key].append(float(qc[key]))
            spacing = qc.get("original_spacing_mm")
            if isinstance(spacing, list) and len(spacing) >= 2:
                values["inplane_spacing_mm"].append(float(min(spacing[:2])))
        values["image_p99"].append(float(np.percentile(tensors[case_id][0], 99)))
    return {k: [float(np.min(v)), float(np.max(v))] for k, v in values.items() if v}


@dataclass(frozen=True)
class RiskCardInputs:
    """What a risk model's card is written from: the run's settings and data, the final model with its cases and
    their risks, the comparison table, the splits and methods, the cases left out, the encoder it was built on."""

    config: FinetuneConfig
    workspace: Workspace
    prepared: PreparedData
    final: FittedDeep
    final_ids: list[str]
    final_risk: NDArray[np.float64]
    table: pd.DataFrame
    splits: list[Split]
    names: list[str]
    skipped: dict[str, str]
    card_in: EncoderCard | None
    encoder: TypePath | None
    labels: str
    synthetic: bool
    concepts: pd.DataFrame


def risk_model_card(inputs: RiskCardInputs) -> RiskModelCard:
    """The card of the risk model ``inputs`` describe (``model_card.json``, sealed when written)."""
    import numpy as np

    from lgerisk.artifacts import versions
    from lgerisk.evaluation.cox import breslow_baseline
    from lgerisk.evaluation.groups import tertile_thresholds
    from lgerisk.models import parameter_count

    time, event = inputs.workspace.outcome(inputs.final_ids)
    risk = np.asarray(inputs.final_risk, float)
    times, cumhaz = breslow_baseline(time, event, risk)
    model_rows = inputs.table[inputs.table["method"] == inputs.names[-1]]
    return RiskModelCard.from_dict(
        {
            "format": RISK_MODEL_FORMAT,
            "kind": "lgerisk survival risk model",
            "intended_use": INTENDED_USE,
            "created_by": f"lgerisk {__version__} finetune",
            "method": inputs.names[-1],
            "data": {
                "hash": inputs.prepared.data_hash(),
                "cases": len(inputs.final_ids),
                "events": int(event.sum()),
                "labelled_cases": len(inputs.workspace.case_ids),
                "left_out": inputs.skipped,
                "synthetic": inputs.synthetic,
                "train_cases": inputs.final_ids,
            },
            "config": inputs.config.to_dict(),
            "label_fraction_note": "label_fraction applies to the cross-validation training folds; the final model "
            "trains on every labelled development case",
            "labels": inputs.labels,
            "encoder": {
                "run": Path(inputs.encoder).name if inputs.encoder is not None else None,
                "model_sha256": file_sha256(Path(inputs.encoder) / MODEL_FILE) if inputs.encoder is not None else None,
                "data_hash": inputs.card_in.data.hash if inputs.card_in is not None else None,
                "objective": inputs.card_in.objective if inputs.card_in is not None else None,
            },
            "model": inputs.final.model.config.to_dict(),
            "parameters": parameter_count(inputs.final.model),
            "tabular": inputs.final.tabular.to_dict(),
            "tensor_spec": inputs.workspace.spec.to_dict(),
            "preprocessing": inputs.prepared.preprocess_settings,
            "radiomics": {
                "settings_hash": column_value(inputs.prepared.features, "settings_hash"),
                "default_settings_hash": default_radiomics_hash(),
                "note": "predict re-extracts the selected features with the default extraction settings "
                "and refuses a model whose table was made with other ones",
            },
            "survival": {
                "time_unit": "as in the outcomes (years in the synthetic cohorts)",
                "horizons": list(inputs.config.horizons),
                "baseline_times": times.tolist(),
                "baseline_cumhaz": cumhaz.tolist(),
                "risk_thresholds": list(tertile_thresholds(risk)),
                "training_risk_mean": float(risk.mean()),
                "training_risk_sd": float(risk.std()),
                "training_risk_range": [float(risk.min()), float(risk.max())],
            },
            "training_ranges": training_ranges(inputs.prepared, inputs.final_ids, inputs.workspace.tensors),
            "evaluation": {
                "splits": [
                    {"name": s.name, "evaluation": s.evaluation, "train": len(s.train), "test": len(s.test)}
                    for s in inputs.splits
                ],
                "methods": inputs.names,
                "metrics": json_rows(inputs.table),
                "model_metrics": json_rows(model_rows),
            },
            "concepts": json_rows(inputs.concepts.head(50)),
            "versions": versions(),
        }
    )


def default_radiomics_hash() -> str:
    from lgerisk.radiomics.settings import ROIS, load_params, params_hash

    return params_hash(load_params(), tuple(ROIS))


def column_value(table: pd.DataFrame, column: str) -> str | list[str] | None:
    if column in getattr(table, "columns", ()):
        values = table[column].dropna().unique()
        return str(values[0]) if len(values) == 1 else [str(v) for v in values]
    return None
