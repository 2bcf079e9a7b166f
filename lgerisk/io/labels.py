"""Label maps: how a dataset's mask values translate to lgerisk's internal labels.

Internal labels: 1 LV blood pool, 2 normal myocardium, 3 enhanced scar (core), 4 no-reflow
(counted as scar). ``--labels`` takes a preset name or a map such as
``blood=1,myocardium=2,scar=3+4``.

Presets:
    emidec  blood=1, myocardium=2, scar=3, noreflow=4 (the internal default)
    myops   blood=500, myocardium=200+1220 (normal + edema), scar=2221, ignore=600 (RV)
    acdc    blood=3, myocardium=2, ignore=1 (RV); no scar labels, so scar is derived
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lgerisk.errors import CaseError, InputError

BLOOD, MYOCARDIUM, SCAR, NOREFLOW = 1, 2, 3, 4
"""Internal label values (EMIDEC's convention)."""

GREYZONE = 5
"""Label of the grey (border) zone in preprocessed masks: myocardium between the remote and core thresholds."""

CLASS_NAMES = ("blood", "myocardium", "scar", "noreflow", "ignore")
_ALIASES = {"blood": "blood", "bloodpool": "blood", "blood_pool": "blood", "lv": "blood", "cavity": "blood",
            "myocardium": "myocardium", "myo": "myocardium", "scar": "scar", "infarct": "scar",
            "noreflow": "noreflow", "no_reflow": "noreflow", "mvo": "noreflow", "ignore": "ignore"}


@dataclass(frozen=True)
class LabelMap:
    """Which mask values mean which tissue. Every value is a tuple of mask labels.

    Example:
        >>> parse_label_map("blood=1,myocardium=2,scar=3+4").scar
        (3, 4)
    """

    blood: tuple[int, ...] = ()
    myocardium: tuple[int, ...] = ()
    scar: tuple[int, ...] = ()
    noreflow: tuple[int, ...] = ()
    ignore: tuple[int, ...] = ()
    name: str = field(default="custom", compare=False)

    def to_spec(self) -> str:
        """The map written back as a ``--labels`` string (round-trips through ``parse_label_map``)."""
        parts = [f"{key}={'+'.join(str(v) for v in getattr(self, key))}" for key in CLASS_NAMES if getattr(self, key)]
        return ",".join(parts)

    @property
    def has_scar(self) -> bool:
        """Whether the map names scar labels (so scar can be read from the mask)."""
        return bool(self.scar or self.noreflow)

    def named_values(self) -> set[int]:
        """Every mask value the map names (ignored ones included)."""
        return set(self.blood + self.myocardium + self.scar + self.noreflow + self.ignore)


PRESETS: dict[str, LabelMap] = {
    "emidec": LabelMap(blood=(1,), myocardium=(2,), scar=(3,), noreflow=(4,), name="emidec"),
    "myops": LabelMap(blood=(500,), myocardium=(200, 1220), scar=(2221,), ignore=(600,), name="myops"),
    "acdc": LabelMap(blood=(3,), myocardium=(2,), ignore=(1,), name="acdc"),
}


def parse_label_map(spec: str) -> LabelMap:
    """A preset name or ``class=v[+v...]`` pairs separated by commas -> ``LabelMap``.

    Classes: blood, myocardium, scar, noreflow, ignore. Raises ``InputError`` on anything else.
    """
    text = spec.strip()
    if text.lower() in PRESETS:
        return PRESETS[text.lower()]
    if "=" not in text:
        raise InputError(f"--labels {spec!r}: not a preset ({', '.join(PRESETS)}) nor a map like "
                         "'blood=1,myocardium=2,scar=3+4'.")
    values: dict[str, tuple[int, ...]] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, _, raw = part.partition("=")
        name = _ALIASES.get(key.strip().lower())
        if name is None:
            raise InputError(f"--labels {spec!r}: unknown class {key.strip()!r}; use {', '.join(CLASS_NAMES)}.")
        try:
            labels = tuple(int(v) for v in raw.split("+") if v.strip())
        except ValueError:
            raise InputError(f"--labels {spec!r}: labels of {name!r} must be integers joined by '+'.") from None
        if not labels:
            raise InputError(f"--labels {spec!r}: class {name!r} has no label values.")
        if 0 in labels:
            raise InputError(f"--labels {spec!r}: label 0 is background and cannot name a tissue.")
        values[name] = values.get(name, ()) + labels
    seen: dict[int, str] = {}
    for name, labels in values.items():
        for label in labels:
            if label in seen and seen[label] != name:
                raise InputError(f"--labels {spec!r}: label {label} is given to both {seen[label]!r} and {name!r}.")
            seen[label] = name
    if "myocardium" not in values:
        raise InputError(f"--labels {spec!r}: the map must name the myocardium label(s).")
    return LabelMap(**values, name="custom")


def to_internal(labels: np.ndarray, label_map: LabelMap, mask_path: str) -> np.ndarray:
    """Translate a mask's values to internal labels (uint8), checking the map fits the mask.

    Refuses an empty mask, values the map does not name, and a map whose blood-pool or
    myocardium labels are absent from the mask. Scar labels may be absent (a scar-free heart).
    """
    present = {int(v) for v in np.unique(labels)} - {0}
    if not present:
        raise CaseError(f"{mask_path}: mask is empty (no labelled voxel).")
    unknown = sorted(present - label_map.named_values())
    if unknown:
        raise CaseError(f"{mask_path}: mask has label(s) {_join(unknown)} that the label map "
                        f"'{label_map.name}' ({label_map.to_spec()}) does not name; pass --labels.")
    if not present & set(label_map.myocardium):
        raise CaseError(f"{mask_path}: mask has no myocardium label ({_join(label_map.myocardium)} under "
                        f"label map '{label_map.name}').")
    if label_map.blood and not present & set(label_map.blood):
        raise CaseError(f"{mask_path}: mask has no blood-pool label ({_join(label_map.blood)} under "
                        f"label map '{label_map.name}').")
    out = np.zeros(labels.shape, dtype=np.uint8)
    for internal, values in ((BLOOD, label_map.blood), (MYOCARDIUM, label_map.myocardium),
                             (SCAR, label_map.scar), (NOREFLOW, label_map.noreflow)):
        if values:
            out[np.isin(labels, values)] = internal
    return out


def _join(values: tuple[int, ...] | list[int]) -> str:
    return ", ".join(str(v) for v in values)
