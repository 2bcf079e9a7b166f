"""One synthetic case: its independent random streams, its ground truth, its image and labels.

A case depends only on ``(seed, case_index)``: ``np.random.default_rng([seed, case_index])`` is split
into independent streams (:data:`STREAMS`), so a case is identical whether generated alone, in a
cohort, in parallel or after a resume, and its ground truth can be computed without rendering the
image (:func:`generate_truth`). See docs/synthetic.md, "Reproducibility".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, cast

import numpy as np
import pandas as pd
import SimpleITK as sitk

from lgerisk.errors import InputError
from lgerisk.io.markers import case_id_of
from lgerisk.synth.anatomy import (
    Acquisition,
    Heart,
    draw_acquisition,
    draw_headroom,
    draw_heart,
    draw_scar,
)
from lgerisk.synth.config import SynthConfig, is_count
from lgerisk.synth.hazard import Clinical, draw_clinical, sample_outcomes
from lgerisk.synth.image import render_image
from lgerisk.synth.phantom import HeartRender, majority_labels, render_heart


class Outcome(TypedDict):
    """A case's observed outcome: follow-up ``time`` (years) and ``event`` (1) or censoring (0)."""

    time: float
    event: int


@dataclass
class SyntheticCase:
    """One generated case.

    ``truth`` holds the ground-truth properties (the hazard's inputs, ``log_hazard``, the true
    uncensored ``event_time``) and ``clinical`` the covariates; ``outcome`` the observed
    ``time``/``event``; ``greyzone`` marks output voxels whose myocardial samples are mostly
    grey zone (labelled 2 in ``mask``; kept in memory only).
    """

    case_id: str
    image: sitk.Image
    mask: sitk.Image
    truth: dict[str, float | str]
    clinical: Clinical
    outcome: Outcome
    greyzone: sitk.Image | None = None


STREAMS = ("acquisition", "heart", "scar", "clinical", "outcome", "image", "headroom")
"""The random streams of a case, in spawn order; a new stream goes at the end (spawning a seventh child,
``headroom``, left the first six, version 1's streams, as they were)."""


def case_streams(seed: int, case_index: int) -> dict[str, np.random.Generator]:
    """The independent random streams of case ``case_index`` (:data:`STREAMS`), spawned from
    ``np.random.default_rng([seed, case_index])``."""
    root = np.random.default_rng([seed, case_index])
    return dict(zip(STREAMS, root.spawn(len(STREAMS))))


@dataclass(frozen=True)
class _Design:
    """What rendering the image of a case needs beyond its truth."""

    acq: Acquisition
    heart: Heart
    render: HeartRender
    image_rng: np.random.Generator


def _truth_and_render(
    case_index: int, config: SynthConfig
) -> tuple[dict[str, float | str], Clinical, Outcome, _Design]:
    """Truth, covariates and outcome of a case, and its fine-grid heart (every stream but ``image`` drawn)."""
    if not is_count(case_index):
        raise InputError(f"synthetic case index must be a whole number >= 0, got {case_index}")
    rng = case_streams(config.seed, case_index)
    acq = draw_acquisition(rng["acquisition"], config.small)
    heart = draw_heart(rng["heart"], acq)
    scar = draw_scar(rng["scar"], heart, config)
    if config.hazard_version >= 2:
        scar = draw_headroom(rng["headroom"], scar)
    render = render_heart(acq, heart, scar, config)
    truth: dict[str, float | str] = {"case_id": case_id_of(case_index)}
    for key, value in render.truth.items():
        truth[key] = round(value, 4) if isinstance(value, float) else value
    truth.update(
        {
            "matrix_x": acq.nx,
            "matrix_y": acq.ny,
            "slices": acq.nz,
            "spacing_xy_mm": acq.spacing_xy,
            "spacing_z_mm": acq.spacing_z,
            "slice_thickness_mm": acq.thickness,
        }
    )
    clinical = draw_clinical(rng["clinical"], truth, config.hazard_version)
    row = pd.DataFrame([{**truth, **clinical}])
    out = sample_outcomes(row, rng["outcome"], config.hazard).iloc[0]
    hazard = config.hazard
    # the image-only log-hazard (the image terms' contribution alone) and the clinical part
    lp_image = sum(t.contribution(float(row[t.name].iloc[0])) for t in hazard.image_terms())
    lp_clin = sum(t.contribution(float(row[t.name].iloc[0])) for t in hazard.clinical_terms())
    truth.update(
        {
            "log_hazard": float(out.log_hazard),
            "lp_image": round(float(lp_image), 6),
            "lp_clinical": round(float(lp_clin), 6),
            "event_time": float(out.event_time),
            "censor_time": float(out.censor_time),
        }
    )
    outcome: Outcome = {"time": float(out.time), "event": int(out.event)}
    return truth, clinical, outcome, _Design(acq, heart, render, rng["image"])


def generate_truth(case_index: int, config: SynthConfig) -> tuple[dict[str, float | str], Clinical, Outcome]:
    """Ground truth, covariates and outcome of one case without rendering the image.

    Identical to the ``truth``/``clinical``/``outcome`` of :func:`generate_case` (the image noise
    comes from its own random stream), at a fraction of the cost.

    Example:
        >>> truth, clinical, outcome = generate_truth(3, SynthConfig(small=True))
        >>> truth["case_id"], sorted(outcome)
        ('synth-0003', ['event', 'time'])
    """
    truth, clinical, outcome, _ = _truth_and_render(case_index, config)
    return truth, clinical, outcome


def generate_case(case_index: int, config: SynthConfig) -> SyntheticCase:
    """Generate one synthetic LGE case (image, EMIDEC labels, ground truth, covariates, outcome).

    Deterministic per ``(config.seed, case_index)`` and independent of other cases.

    Example:
        >>> case = generate_case(0, SynthConfig(small=True))
        >>> case.case_id, case.image.GetPixelIDTypeAsString()
        ('synth-0000', '16-bit signed integer')
    """
    truth, clinical, outcome, design = _truth_and_render(case_index, config)
    acq, render = design.acq, design.render
    image, info = render_image(acq, design.heart, render, design.image_rng, config)
    f, q = config.supersample_xy, config.supersample_z
    box_labels, box_gz = majority_labels(render.fine_labels, q, f)
    mask = np.zeros(image.shape, dtype=np.uint8)
    gz = np.zeros(image.shape, dtype=np.uint8)
    i0, i1, j0, j1 = render.box
    mask[:, j0:j1, i0:i1] = box_labels
    gz[:, j0:j1, i0:i1] = box_gz
    truth.update({k: round(v, 4) for k, v in info.items()})
    spacing = (acq.spacing_xy, acq.spacing_xy, acq.spacing_z)
    images = []
    for arr in (image, mask, gz):
        im = sitk.GetImageFromArray(arr)
        im.SetSpacing(spacing)
        im.SetOrigin((0.0, 0.0, 0.0))
        images.append(im)
    return SyntheticCase(cast("str", truth["case_id"]), images[0], images[1], truth, clinical, outcome, images[2])
