"""Where a scan and a model come from: a synthetic cohort (``lgerisk synth``) or real scans.

Provenance is read from the generator's own marks, never from a case id (a real scan may be called
``synth-0001``; a synthetic one may be renamed):

* **scan**: every image the generator writes carries :data:`lgerisk.io.markers.SCAN_MARKER` in its
  NIfTI header description, so a synthetic scan copied anywhere still says so. A preprocessed case
  (``cases/ID/image.nii.gz`` + ``qc.json``) says it in ``qc.json``'s ``synthetic`` (copied from its source
  by ``lgerisk preprocess``). Cohorts written before images were marked are known by the cohort marker
  ``COHORT/synth.json`` (``"generator": "lgerisk.data.synthetic"``, no ``scan_marker``) for the scans in
  its ``images/`` folder. Anything else is a real scan.
* **model**: the model card's ``data.synthetic``, set by ``lgerisk finetune`` from the scans it trained on.

:func:`provenance_sentence` says what a pair (scan, model) means, in words true for that pair.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lgerisk.io.markers import cohort_marker

if TYPE_CHECKING:  # pragma: no cover
    pass


NIFTI_SUFFIXES = (".nii", ".nii.gz")


def header_marked(path: str | os.PathLike[str]) -> bool:
    """Whether the NIfTI file at ``path`` carries the generator's scan marker in its header description.

    Only the header is read (its first 540 bytes). Not a NIfTI file, a folder (DICOM), or unreadable: False.
    """
    from lgerisk.io.markers import SCAN_MARKER
    from lgerisk.io.scans import nifti_header, nifti_layout

    path = Path(path)
    if not path.is_file() or not path.name.lower().endswith(NIFTI_SUFFIXES):
        return False
    try:
        layout = nifti_layout(nifti_header(path))
    except (OSError, EOFError, ValueError, zlib.error):
        return False
    return layout is not None and layout.description.strip() == SCAN_MARKER


def _preprocessed_flag(image: Path) -> bool | None:
    """``qc.json``'s ``synthetic`` beside a preprocessed case's image, or None where it does not say."""
    from lgerisk.io.layout import read_case_qc

    qc = read_case_qc(image)
    flag = qc.get("synthetic") if qc is not None else None
    return flag if isinstance(flag, bool) else None


def scan_is_synthetic(image: str | os.PathLike[str], qc: Mapping[str, object] | None = None) -> bool:
    """Whether the scan at ``image`` comes from the synthetic generator (see the module docstring).

    ``qc``: the scan's preprocessing record, when the scan is a preprocessed case (its ``synthetic``
    decides when present).

    Example:
        >>> scan_is_synthetic("sample_data/images/synth-0000.nii.gz")                   # doctest: +SKIP
        True
        >>> scan_is_synthetic("emidec/samplePositive/Images/samplePositive.nii.gz")    # doctest: +SKIP
        False
    """
    image = Path(image)
    if qc is not None and isinstance(qc.get("synthetic"), bool):
        return bool(qc["synthetic"])
    flag = _preprocessed_flag(image)
    if flag is not None:
        return flag
    if header_marked(image):
        return True
    if image.parent.name == "images":  # a cohort written before the generator marked each scan
        marker = cohort_marker(image.parent.parent)
        if marker is not None and not marker.get("scan_marker"):
            return True
    return False


def cases_are_synthetic(images: Iterable[str | os.PathLike[str]]) -> bool:
    """Whether there is at least one scan and every scan is synthetic (a model trained on them is)."""
    flags = [scan_is_synthetic(image) for image in images]
    return bool(flags) and all(flags)


def provenance_sentence(scan_synthetic: bool | None, model_synthetic: bool, several: bool = False) -> str | None:
    """One sentence, true for this pair, on where the scan(s) and the model come from (None: all real).

    ``several``: the sentence speaks of a set of scans; ``scan_synthetic`` None: a set of scans, some
    synthetic and some real.

    Example:
        >>> provenance_sentence(False, True)
        'Model trained on SYNTHETIC data; this scan is a real scan: the risk is not meaningful for it.'
        >>> for part in provenance_sentence(True, True, several=True).split("; "): print(part)
        SYNTHETIC data: generated scans, scored by a model trained on generated cases
        no number here describes a real person.
        >>> provenance_sentence(False, False) is None
        True
    """
    if scan_synthetic is None:
        if model_synthetic:
            return (
                "Model trained on SYNTHETIC data; some of these scans are real scans: their risks are not "
                "meaningful. The others are SYNTHETIC scans (generated cases, not patients)."
            )
        return (
            "Some of these scans are SYNTHETIC (generated cases, not patients), scored by a model trained on "
            "real scans: no number about them describes a real person."
        )
    scans = "generated scans" if several else "a generated scan"
    cases = "generated cases, not patients" if several else "a generated case, not a patient"
    if scan_synthetic and model_synthetic:
        return (
            f"SYNTHETIC data: {scans}, scored by a model trained on generated cases; no number here "
            "describes a real person."
        )
    if scan_synthetic:
        return (
            f"SYNTHETIC {'scans' if several else 'scan'}: {cases}, scored by a model trained on real scans; "
            "no number here describes a real person."
        )
    if model_synthetic:
        if several:
            return "Model trained on SYNTHETIC data; these scans are real scans: their risks are not meaningful."
        return "Model trained on SYNTHETIC data; this scan is a real scan: the risk is not meaningful for it."
    return None


def cohort_sentence(scan_flags: list[bool], model_synthetic: bool) -> str | None:
    """:func:`provenance_sentence` for a set of scans (all synthetic, all real, or some of each)."""
    known = [bool(flag) for flag in scan_flags]
    if known and all(known):
        return provenance_sentence(True, model_synthetic, several=True)
    if not any(known):
        return provenance_sentence(False, model_synthetic, several=True)
    return provenance_sentence(None, model_synthetic, several=True)


def mismatch_reason(scan_synthetic: bool, model_synthetic: bool) -> str | None:
    """Why a prediction is not meaningful because scan and model come from different worlds (None: same)."""
    if model_synthetic and not scan_synthetic:
        return "the model was trained on synthetic data and this is a real scan"
    if scan_synthetic and not model_synthetic:
        return "this is a synthetic scan and the model was trained on real scans"
    return None
