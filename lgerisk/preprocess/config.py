"""Preprocessing settings: one frozen dataclass that round-trips to JSON and hashes stably."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import ClassVar

from lgerisk.config import JsonConfig
from lgerisk.errors import InputError

SCAR_METHODS = ("auto", "label", "fwhm", "nsd", "calibrated")
REMOTE_METHODS = ("mixture", "iterative", "whole")  # the same names as lgerisk.preprocess.scar.REMOTE_METHODS
NORMALISATIONS = ("myo-blood", "zscore", "percentile")
INTENSITY_SCAR_METHODS = ("nsd", "fwhm", "calibrated")
"""Scar methods that derive scar from intensity: given explicitly, a map may leave mask labels unnamed
without stopping the cohort."""


@dataclass(frozen=True)
class PreprocessConfig(JsonConfig):
    """How a raw case becomes a canonical one.

    Attributes:
        labels: ``--labels`` spec (preset or map) of the raw masks.
        inplane_spacing_mm: in-plane resampling target; slice spacing is always kept.
        crop_size: in-plane field of view in voxels (square), centred on the LV.
        normalisation: ``myo-blood`` (remote myocardium -> 0, blood pool -> 1), ``zscore``
            (inside the crop) or ``percentile`` (1st/99th percentile of the crop -> 0/1).
        scar_method: ``auto`` (``label`` when the map names scar labels, else ``fwhm``),
            ``label``, ``fwhm`` (remote + 50 % of the enhanced region's peak above remote), ``nsd``
            (remote mean + n SD) or ``calibrated`` (``fwhm`` with the peak fraction learnt from expert-labelled
            scans by ``lgerisk calibrate-scar``; needs ``scar_calibration``).
        nsd: n of the ``nsd`` core threshold (any positive n; at or below ``greyzone_nsd`` there is
            no grey zone).
        greyzone_nsd: the grey zone starts at remote mean + this many SD.
        remote_method: how remote (non-enhanced) myocardium is found: ``mixture`` (darker class of a
            two-Gaussian mixture), ``iterative`` (exclusion above 2 SD to convergence) or ``whole``
            (median / MAD of the whole wall, as before; biased by scar).
        scar_smoothing_mm: in-plane Gaussian SD (mm) of the smoothing within the myocardium that
            ``fwhm`` searches (0: none).
        scar_calibration: with ``scar_method='calibrated'``, the calibration folder (or its JSON card); its
            content, not its path, enters the settings hash.

    Example:
        >>> PreprocessConfig(nsd=3).settings_hash() != PreprocessConfig().settings_hash()
        True
    """

    config_name: ClassVar[str] = "preprocessing settings"

    labels: str = "emidec"
    inplane_spacing_mm: float = 1.4
    crop_size: int = 96
    normalisation: str = "myo-blood"
    scar_method: str = "auto"
    nsd: float = 5.0
    greyzone_nsd: float = 2.0
    remote_method: str = "mixture"
    scar_smoothing_mm: float = 2.5
    scar_calibration: str = ""

    def __post_init__(self) -> None:
        if self.scar_method not in SCAR_METHODS:
            raise InputError(
                f"scar_method={self.scar_method!r}: choose one of {', '.join(SCAR_METHODS)}.", setting="scar_method"
            )
        if self.normalisation not in NORMALISATIONS:
            raise InputError(
                f"normalisation={self.normalisation!r}: choose one of {', '.join(NORMALISATIONS)}.",
                setting="normalisation",
            )
        if not 0.2 <= self.inplane_spacing_mm <= 5.0:
            raise InputError(
                f"inplane_spacing_mm={self.inplane_spacing_mm!r}: in-plane spacing must be 0.2-5 mm.",
                setting="inplane_spacing_mm",
            )
        if not 16 <= self.crop_size <= 1024:
            raise InputError(f"crop_size={self.crop_size!r}: crop size must be 16-1024 voxels.", setting="crop_size")
        check_sd_threshold("nsd", self.nsd, "the scar core threshold", 5)
        if self.remote_method not in REMOTE_METHODS:
            raise InputError(
                f"remote_method={self.remote_method!r}: choose one of {', '.join(REMOTE_METHODS)}.",
                setting="remote_method",
            )
        if not 0 <= self.scar_smoothing_mm <= 10:
            raise InputError(
                f"scar_smoothing_mm={self.scar_smoothing_mm!r}: must be 0-10 mm.", setting="scar_smoothing_mm"
            )
        check_sd_threshold("greyzone_nsd", self.greyzone_nsd, "the grey zone threshold", 2)
        if self.scar_method == "calibrated" and not self.scar_calibration:
            raise InputError(
                "scar_method='calibrated' needs scar_calibration=FOLDER, a folder holding a scar calibration card.",
                setting="scar_calibration",
            )
        if self.scar_method == "calibrated" and (self.remote_method != "mixture" or self.scar_smoothing_mm != 2.5):
            raise InputError(
                "scar_method='calibrated' was learnt with remote_method='mixture' and scar_smoothing_mm=2.5; "
                "leave both at these defaults.",
                setting="scar_method",
            )
        if self.scar_calibration and self.scar_method != "calibrated":
            raise InputError(
                f"scar_calibration is only used with scar_method='calibrated', not {self.scar_method!r}.",
                setting="scar_calibration",
            )

    def settings_hash(self) -> str:
        """Short stable hash of the settings and the algorithm version (outputs change with either)."""
        from lgerisk.preprocess import ALGORITHM_VERSION

        settings = self.to_dict()
        if self.scar_calibration:  # what the calibration says, wherever it lies
            from lgerisk.preprocess.calibration import load_calibration

            settings["scar_calibration"] = load_calibration(self.scar_calibration).summary()["sha256"]
        payload = json.dumps({"settings": settings, "algorithm": ALGORITHM_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_sd_threshold(name: str, value: object, what: str, default: float) -> None:
    """Refuse (``InputError`` about setting ``name``) a threshold in standard deviations that is not a finite
    number above 0: not a number (``nan`` included), infinite, zero or negative.

    Example:
        >>> check_sd_threshold("nsd", float("nan"), "the scar core threshold", 5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lgerisk.errors.InputError: nsd=nan: not a number; the scar core threshold counts standard deviations ...
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        problem = "not a number"
    elif math.isinf(value):
        problem = "infinite"
    elif value <= 0:
        problem = "not above 0"
    else:
        return
    raise InputError(
        f"{name}={value!r}: {problem}; {what} counts standard deviations above the remote myocardium's mean and "
        f"must be a finite number above 0 (the default is {default}).",
        setting=name,
    )
