"""pyradiomics parameters: the shipped LGE default, a user's YAML, validation, image types, hashing."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from lgerisk.errors import InputError, brief

ROIS: dict[str, tuple[int, ...]] = {"myocardium": (2, 3, 4, 5), "scar": (3, 4), "greyzone": (5,)}
"""Regions of interest over the preprocessed labels (2 remote, 3 core, 4 no-reflow, 5 grey zone)."""

IMAGE_TYPES: dict[str, tuple[str, dict[str, list[float]]]] = {
    "original": ("Original", {}),
    "log": ("LoG", {"sigma": [1.0, 2.0, 3.0]}),
    "wavelet": ("Wavelet", {}),
}
"""``--image-types`` names -> pyradiomics image type and its settings."""


def default_params_path() -> Path:
    """Path of the shipped default parameter file (``params_lge.yaml``)."""
    return Path(str(resources.files("lgerisk.radiomics") / "params_lge.yaml"))


def _parse_names(text: str, allowed: Mapping[str, object], setting: str, kind: str) -> tuple[str, ...]:
    """Comma-separated names -> a tuple without duplicates, refusing names not in ``allowed``."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise InputError(
            f"{setting}={text!r}: unknown {kind} {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(allowed)}.",
            setting=setting,
        )
    return names


def parse_rois(text: str) -> tuple[str, ...]:
    """``"myocardium,scar"`` -> ROI names, refusing unknown ones."""
    return _parse_names(text, ROIS, "rois", "ROI")


def parse_image_types(text: str) -> tuple[str, ...]:
    """``"original,log"`` -> image type names, refusing unknown ones."""
    return _parse_names(text, IMAGE_TYPES, "image_types", "image type")


def load_params(
    path: str | os.PathLike[str] | None = None, image_types: tuple[str, ...] | None = None
) -> dict[str, object]:
    """Read a pyradiomics parameter file (the shipped default when ``path`` is None), validate it
    with pyradiomics' own schema, and optionally replace its image types.

    Example:
        >>> params = load_params(image_types=("original", "log"))     # doctest: +SKIP
        >>> sorted(params["imageType"])                                # doctest: +SKIP
        ['LoG', 'Original']
    """
    import yaml

    source = Path(path) if path is not None else default_params_path()
    if not source.is_file():
        raise InputError(f"{source}: parameter file does not exist.")
    try:
        params = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: not a YAML file ({str(exc).splitlines()[0]}).") from exc
    if not isinstance(params, dict):
        raise InputError(
            f"{source}: a pyradiomics parameter file is a YAML mapping (imageType, featureClass, "
            f"setting), not a {type(params).__name__}."
        )
    if image_types is not None:
        params = copy.deepcopy(params)
        params["imageType"] = {IMAGE_TYPES[name][0]: dict(IMAGE_TYPES[name][1]) for name in image_types}
    validate_params(params, str(source))
    return params


def validate_params(params: Mapping[str, object], source: str) -> None:
    """Validate with pyradiomics' own schema (pykwalify); ``InputError`` naming ``source`` if rejected."""
    import logging

    import pykwalify.core
    from radiomics import getParameterValidationFiles

    for name in ("pykwalify", "pykwalify.core", "pykwalify.rule"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    schema_file, schema_functions = getParameterValidationFiles()
    try:
        pykwalify.core.Core(
            source_data=copy.deepcopy(params), schema_files=[schema_file], extensions=[schema_functions]
        ).validate()
    except Exception as exc:  # noqa: BLE001 - pykwalify raises SchemaError and plain exceptions alike
        message = " ".join(str(getattr(exc, "msg", exc)).split())
        raise InputError(f"{source}: pyradiomics rejects these parameters ({brief(message, 300)}).") from exc


def params_hash(params: Mapping[str, object], rois: tuple[str, ...]) -> str:
    """Short stable hash of the parameters and ROIs (a feature row is reused only under the same hash)."""
    from lgerisk.radiomics import EXTRACTION_VERSION

    payload = json.dumps(
        {"params": params, "rois": list(rois), "version": EXTRACTION_VERSION}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
