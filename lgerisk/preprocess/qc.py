"""The QC record of one preprocessed scan: what :func:`lgerisk.preprocess.pipeline.preprocess_case` measured,
as written to the case's ``qc.json`` (:data:`lgerisk.io.layout.QC_FILE`) and read back by ``predict``, ``explain``
and the API.

Example:
    >>> record = QCRecord.from_qc({"case_id": "A1", "scar_method": "label", "scar_percent": 12.5,
    ...     "greyzone_percent": 3.0, "myocardium_mass_g": 110.0, "myocardium_volume_ml": 104.8,
    ...     "scar_volume_ml": 13.1, "synthetic": False, "warnings": []})
    >>> record.scar_percent, record.noreflow_percent, record.warnings
    (12.5, 0.0, ())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lgerisk.types import json_float, json_list

if TYPE_CHECKING:
    from lgerisk.types import JSONDict

__all__ = ["QCRecord"]


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
    values: JSONDict = field(repr=False, compare=False)

    @classmethod
    def from_qc(cls, qc: JSONDict) -> QCRecord:
        """From a ``qc.json`` dict (kept whole as ``values``)."""
        return cls(
            case_id=str(qc["case_id"]),
            scar_method=str(qc["scar_method"]),
            scar_percent=json_float(qc["scar_percent"]),
            greyzone_percent=json_float(qc["greyzone_percent"]),
            noreflow_percent=json_float(qc.get("noreflow_percent") or 0.0),
            myocardium_mass_g=json_float(qc["myocardium_mass_g"]),
            myocardium_volume_ml=json_float(qc["myocardium_volume_ml"]),
            scar_volume_ml=json_float(qc["scar_volume_ml"]),
            synthetic=bool(qc.get("synthetic")),
            warnings=tuple(str(w) for w in json_list(qc.get("warnings"))),
            values=dict(qc),
        )
