"""Label maps: how a dataset's mask values translate to lgerisk's internal labels.

Internal labels: 1 LV blood pool, 2 normal myocardium, 3 enhanced scar (core), 4 no-reflow
(counted as scar). The ``labels`` setting takes a preset name or a map such as
``blood=1,myocardium=2,scar=3+4``.

Presets:
    emidec  blood=1, myocardium=2, scar=3, noreflow=4 (the internal default)
    myops   blood=500, myocardium=200+1220 (normal + edema), scar=2221, ignore=600 (RV)
    acdc    blood=3, myocardium=2, ignore=1 (RV); no scar labels, so scar is derived

DICOM SEG and RTSTRUCT masks name their structures instead of numbering them: segment labels and
ROI names are read through a name map, ``DEFAULT_NAMES`` (case ignored, '_' and '-' read as spaces),
which ``name:`` entries of ``labels`` override or extend, e.g.
``labels='myocardium=name:LV Myo,ignore=name:RV insertion'``. Two classes take names only:
``epicardium`` (the area inside the epicardial contour, read as myocardium) and ``endocardium`` (the
area inside the endocardial contour, read as blood pool), as some reading software exports them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from lgerisk.errors import CaseError, InputError

BLOOD, MYOCARDIUM, SCAR, NOREFLOW = 1, 2, 3, 4
"""Internal label values (EMIDEC's convention)."""

GREYZONE = 5
"""Label of the grey (border) zone in preprocessed masks: myocardium between the remote and core thresholds."""

CLASS_NAMES = ("blood", "myocardium", "scar", "noreflow", "ignore")
NAME_ONLY_CLASSES = ("epicardium", "endocardium")
"""Classes that only DICOM structure names can take (an area, not a tissue: see the module docstring)."""
_ALIASES = {
    "blood": "blood",
    "bloodpool": "blood",
    "blood_pool": "blood",
    "lv": "blood",
    "cavity": "blood",
    "myocardium": "myocardium",
    "myo": "myocardium",
    "scar": "scar",
    "infarct": "scar",
    "noreflow": "noreflow",
    "no_reflow": "noreflow",
    "mvo": "noreflow",
    "ignore": "ignore",
    "epicardium": "epicardium",
    "epi": "epicardium",
    "endocardium": "endocardium",
    "endo": "endocardium",
}
_INTEGER = re.compile(r"-?[0-9]+")
"""A label value as ``labels`` writes it: ASCII digits, perhaps a minus sign (not ``1_000``, not ``1.0``)."""
NAME_PREFIX = "name:"
"""A ``labels`` value starting with this is a DICOM structure name, not a label value."""

DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "myocardium": (
        "LV myocardium",
        "Myocardium",
        "LV myo",
        "Myo",
        "Left ventricular myocardium",
        "LV wall",
        "Healthy myocardium",
        "Normal myocardium",
        "Remote myocardium",
        "Edema",
        "Oedema",
        "Myocardial edema",
    ),
    "blood": (
        "LV blood pool",
        "LV bloodpool",
        "Blood pool",
        "LV blood",
        "LV cavity",
        "Left ventricular cavity",
        "LV lumen",
        "Left ventricle",
        "LV",
    ),
    "scar": (
        "Scar",
        "LV scar",
        "Myocardial scar",
        "Infarct",
        "Myocardial infarct",
        "Myocardial infarction",
        "Infarction",
        "LGE",
        "Enhancement",
        "Late enhancement",
        "Fibrosis",
    ),
    "noreflow": ("MVO", "Microvascular obstruction", "No reflow", "No-reflow", "Noreflow"),
    "epicardium": ("LV epicardium", "Epicardium", "LV epicardial contour", "Epicardial contour", "saepicardialContour"),
    "endocardium": (
        "LV endocardium",
        "Endocardium",
        "LV endocardial contour",
        "Endocardial contour",
        "saendocardialContour",
    ),
    "ignore": (
        "RV",
        "Right ventricle",
        "RV blood pool",
        "RV cavity",
        "RV myocardium",
        "RV endocardium",
        "RV epicardium",
        "saendocardialContour RV",
        "saepicardialContour RV",
    ),
}
"""The default name map of DICOM SEG segment labels and RTSTRUCT ROI names (compared by ``normalise_name``)."""


def normalise_name(name: str) -> str:
    """A structure name as the name map compares it: lower case, '_' and '-' as spaces, single spaces.

    Example:
        >>> normalise_name("  LV_Blood-pool ")
        'lv blood pool'
    """
    return " ".join(str(name).replace("_", " ").replace("-", " ").lower().split())


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
    names: tuple[tuple[str, str], ...] = ()
    """``(class, structure name)`` pairs given with ``name:`` (they override ``DEFAULT_NAMES``)."""

    def to_spec(self) -> str:
        """The map written back as a ``labels`` string (round-trips through ``parse_label_map``)."""
        parts = []
        for key in CLASS_NAMES + NAME_ONLY_CLASSES:
            values = [str(v) for v in getattr(self, key, ())]
            values += [f"{NAME_PREFIX}{text}" for cls, text in self.names if cls == key]
            if values:
                parts.append(f"{key}={'+'.join(values)}")
        return ",".join(parts)

    def name_classes(self) -> dict[str, str]:
        """Normalised structure name -> class: ``DEFAULT_NAMES``, then this map's ``name:`` entries, which
        win (so ``ignore=name:Scar`` turns the default 'Scar' off).

        Example:
            >>> parse_label_map("myocardium=name:Wall,ignore=name:LV").name_classes()["lv"]
            'ignore'
        """
        classes = {normalise_name(text): cls for cls, texts in DEFAULT_NAMES.items() for text in texts}
        classes.update({normalise_name(text): cls for cls, text in self.names})
        return classes

    @property
    def names_scar(self) -> bool:
        """Whether some structure name maps to scar or no-reflow (so DICOM masks can carry scar)."""
        return any(cls in ("scar", "noreflow") for cls in self.name_classes().values())

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

    Classes: blood, myocardium, scar, noreflow, ignore. Raises ``InputError`` on anything else, a
    malformed map included (an empty entry between commas, a ``+`` with nothing on one side, a label
    that is not a whole number); one trailing comma is allowed.
    """
    text = spec.strip()
    if text.lower() in PRESETS:
        return PRESETS[text.lower()]
    if "=" not in text:
        raise InputError(
            f"labels={spec!r}: not a preset ({', '.join(PRESETS)}) nor a map like 'blood=1,myocardium=2,scar=3+4'.",
            setting="labels",
        )
    values: dict[str, tuple[int, ...]] = {}
    names: list[tuple[str, str]] = []
    parts = text.split(",")
    if len(parts) > 1 and not parts[-1].strip():
        parts = parts[:-1]  # one trailing comma is fine
    for part in parts:
        if not part.strip():
            raise InputError(
                f"labels={spec!r}: an empty entry between commas; separate class=labels pairs by single commas.",
                setting="labels",
            )
        key, _, raw = part.partition("=")
        name = _ALIASES.get(key.strip().lower())
        if name is None:
            raise InputError(
                f"labels={spec!r}: unknown class {key.strip()!r}; use {', '.join(CLASS_NAMES + NAME_ONLY_CLASSES)}.",
                setting="labels",
            )
        tokens = [v.strip() for v in raw.split("+")]
        if len(tokens) > 1 and not all(tokens):
            raise InputError(
                f"labels={spec!r}: the labels of {name!r} ({raw.strip()!r}) have a '+' with nothing on one side; "
                "join labels as in 'scar=3+4'.",
                setting="labels",
            )
        tokens = [token for token in tokens if token]
        texts = [t[len(NAME_PREFIX) :].strip() for t in tokens if t.lower().startswith(NAME_PREFIX)]
        if any(not t for t in texts):
            raise InputError(f"labels={spec!r}: 'name:' of {name!r} needs a structure name after it.", setting="labels")
        names += [(name, t) for t in texts]
        numbers = [v for v in tokens if not v.lower().startswith(NAME_PREFIX)]
        if not all(_INTEGER.fullmatch(v) for v in numbers):
            raise InputError(
                f"labels={spec!r}: labels of {name!r} must be integers joined by '+' (or "
                "'name:' followed by a DICOM structure name).",
                setting="labels",
            )
        labels = tuple(int(v) for v in numbers)
        if not labels and not texts:
            raise InputError(f"labels={spec!r}: class {name!r} has no label values.", setting="labels")
        if labels and name in NAME_ONLY_CLASSES:
            raise InputError(
                f"labels={spec!r}: class {name!r} takes DICOM structure names only "
                f"({name}=name:...), not label values.",
                setting="labels",
            )
        if 0 in labels:
            raise InputError(f"labels={spec!r}: label 0 is background and cannot name a tissue.", setting="labels")
        if labels:
            values[name] = values.get(name, ()) + labels
    seen: dict[int, str] = {}
    for name, labels in values.items():
        for label in labels:
            if label in seen and seen[label] != name:
                raise InputError(
                    f"labels={spec!r}: label {label} is given to both {seen[label]!r} and {name!r}.", setting="labels"
                )
            seen[label] = name
    seen_names: dict[str, str] = {}
    for name, text in names:
        key = normalise_name(text)
        if key in seen_names and seen_names[key] != name:
            raise InputError(
                f"labels={spec!r}: name {text!r} is given to both {seen_names[key]!r} and {name!r}.", setting="labels"
            )
        seen_names[key] = name
    if "myocardium" not in values and (values or not names):
        raise InputError(f"labels={spec!r}: the map must name the myocardium label(s).", setting="labels")
    return LabelMap(**values, name="custom", names=tuple(names))


class LabelMapMismatch(CaseError):
    """A mask the label map does not fit; ``details`` holds the mask, its labels, those the map leaves
    unnamed, and the kind of misfit (see ``label_fit``), so a batch can judge the map across cases."""

    def __init__(self, message: str, mask: str, present: set[int], label_map: LabelMap) -> None:
        super().__init__(message, setting="labels")
        self.details = {
            "kind": "label_map",
            "fit": label_fit(present, label_map),
            "mask": mask,
            "present": sorted(present),
            "unnamed": sorted(present - label_map.named_values()),
        }


def label_fit(present: set[int], label_map: LabelMap) -> str:
    """How ``label_map`` fits a mask holding the labels ``present`` (background 0 excluded).

    ``"fits"``: every label is named and the myocardium (and blood pool, when the map names one) is
    there; ``"partial"``: the tissues are there but some labels are not named (a map that leaves out,
    say, the scar labels); ``"misfit"``: the map names none of the labels, or the mask lacks the map's
    myocardium or blood pool (a map for other masks); ``"empty"``: no label at all.

    Example:
        >>> emidec = PRESETS["emidec"]
        >>> [label_fit(labels, emidec) for labels in ({1, 2, 3}, {1, 2, 7}, {500, 200}, set())]
        ['fits', 'partial', 'misfit', 'empty']
    """
    if not present:
        return "empty"
    named = present & label_map.named_values()
    if not named or not present & set(label_map.myocardium) or (label_map.blood and not present & set(label_map.blood)):
        return "misfit"
    return "partial" if present - named else "fits"


def to_internal(labels: np.ndarray, label_map: LabelMap, mask_path: str) -> np.ndarray:
    """Translate a mask's values to internal labels (uint8), checking the map fits the mask.

    Refuses an empty mask, values the map does not name, and a map whose blood-pool or
    myocardium labels are absent from the mask (``LabelMapMismatch``). Scar labels may be absent
    (a scar-free heart).
    """
    present = {int(v) for v in np.unique(labels)} - {0}
    if not present:
        raise CaseError(f"{mask_path}: mask is empty (no labelled voxel).")
    unknown = sorted(present - label_map.named_values())
    if unknown:
        raise LabelMapMismatch(
            f"{mask_path}: mask has label(s) {_join(unknown)} that the label map "
            f"'{label_map.name}' ({label_map.to_spec()}) does not name; {_advice([present], 'a map that names them')}.",
            mask_path,
            present,
            label_map,
        )
    if not present & set(label_map.myocardium):
        raise LabelMapMismatch(
            f"{mask_path}: mask has no myocardium label ({_join(label_map.myocardium)} under "
            f"label map '{label_map.name}'){_preset_advice(present)}.",
            mask_path,
            present,
            label_map,
        )
    if label_map.blood and not present & set(label_map.blood):
        raise LabelMapMismatch(
            f"{mask_path}: mask has no blood-pool label ({_join(label_map.blood)} under label map "
            f"'{label_map.name}'){_preset_advice(present)}.",
            mask_path,
            present,
            label_map,
        )
    out = np.zeros(labels.shape, dtype=np.uint8)
    for internal, values in (
        (BLOOD, label_map.blood),
        (MYOCARDIUM, label_map.myocardium),
        (SCAR, label_map.scar),
        (NOREFLOW, label_map.noreflow),
    ):
        if values:
            out[np.isin(labels, values)] = internal
    return out


def quoted_names(names: Iterable[str]) -> str:
    """Structure names as a sentence lists them: ``'Myo', 'LV'``."""
    return ", ".join(repr(str(name)) for name in names)


def name_map_error(where: str, label_map: LabelMap, masks: Sequence[tuple[str, Sequence[str]]]) -> InputError:
    """The one sentence for a name map that leaves structure names of ``masks`` (``(file, names)``) unmapped."""
    classes = label_map.name_classes()
    found = list(dict.fromkeys(name for _, names in masks for name in names))
    unnamed = [name for name in found if normalise_name(name) not in classes]
    files = ", ".join(Path(file).name for file, _ in masks)
    example = unnamed[0] if unnamed else "..."
    return InputError(
        f"{where}: the name map leaves structure name(s) {quoted_names(unnamed)} unmapped in {files} (names "
        f"found: {quoted_names(found)}); map them in the label map, e.g. labels={'ignore=name:' + example!r} or "
        f"{'myocardium=name:' + example!r} (see docs/dicom.md).",
        setting="labels",
    )


# --- the map against a whole cohort -----------------------------------------------------------------

SAMPLED_MASKS = 3
"""How many readable masks (the cohort's first) are checked against the label map before any work."""

PARTIAL_MAP_LIMIT = 3
"""A batch stops once this many masks showed labels the map leaves unnamed (the map, not the masks)."""


def mask_labels(path: str | os.PathLike[str]) -> set[int]:
    """The labels (other than background 0) a mask file or DICOM folder holds; ``CaseError`` if unreadable."""
    from lgerisk.io.scans import label_array, read_volume

    return {int(v) for v in np.unique(label_array(read_volume(path, "mask", verify_nifti=False), path))} - {0}


def first_mask_labels(
    masks: Iterable[Path | None], count: int = SAMPLED_MASKS, tries: int = 3 * SAMPLED_MASKS
) -> list[tuple[Path, set[int]]]:
    """The labels of the first ``count`` label-image masks that can be read and are not empty (looking at no
    more than ``tries`` masks; a missing or broken mask is left to its case's own error, and DICOM
    SEG/RTSTRUCT masks, which name structures instead, to ``lgerisk.io.dicom_masks.check_names_fit``)."""
    from lgerisk.io.formats import is_dicom_mask

    samples: list[tuple[Path, set[int]]] = []
    for mask in list(masks)[:tries]:
        if mask is None or is_dicom_mask(mask):
            continue
        try:
            present = mask_labels(mask)
        except CaseError:
            continue
        if present:
            samples.append((Path(mask), present))
        if len(samples) == count:
            break
    return samples


def fitting_presets(label_sets: Iterable[set[int]]) -> list[str]:
    """The presets that fit every one of ``label_sets`` exactly."""
    sets = list(label_sets)
    return [name for name, preset in PRESETS.items() if sets and all(label_fit(s, preset) == "fits" for s in sets)]


def _described(label_map: LabelMap) -> str:
    return (
        f"labels={label_map.name!r} ({label_map.to_spec()})"
        if label_map.name != "custom"
        else f"labels={label_map.to_spec()!r}"
    )


def _advice(label_sets: Iterable[set[int]], other: str = "the map the masks use") -> str:
    """What to pass: the preset that fits every one of ``label_sets`` where there is one, else ``other`` as a map."""
    presets = fitting_presets(label_sets)
    if presets:
        return f"pass labels={presets[0]!r}"
    return f"pass {other} as labels=MAP (presets: emidec, myops, acdc; or e.g. 'blood=1,myocardium=2,scar=3+4')"


def _preset_advice(present: set[int]) -> str:
    """``"; pass labels='myops'"`` where a preset fits a mask holding ``present``, else ``""``."""
    presets = fitting_presets([present])
    return f"; its labels are the {presets[0]!r} preset's: pass labels={presets[0]!r}" if presets else ""


def partial_map_error(where: str, label_map: LabelMap, masks: Sequence[tuple[str, set[int]]]) -> InputError:
    """The one sentence for a map that leaves labels of ``masks`` unnamed (``(name, labels)`` pairs)."""
    found = sorted(set().union(*(labels for _, labels in masks)))
    unnamed = sorted(set(found) - label_map.named_values())
    names = ", ".join(Path(name).name for name, _ in masks)
    plus = "+".join(str(v) for v in unnamed)
    return InputError(
        f"{where}: {_described(label_map)} leaves label(s) {_join(unnamed)} unnamed in {names} "
        f"(labels found: {_join(found)}); {_advice(labels for _, labels in masks)}, or name every "
        f"label in the map (e.g. add scar={plus} or ignore={plus}).",
        setting="labels",
    )


def check_map_fits(
    samples: Sequence[tuple[Path, set[int]]], label_map: LabelMap, where: str, allow_unnamed: bool = False
) -> None:
    """Stop a cohort whose first masks show the label map cannot fit it (``InputError``, one sentence
    naming the labels found): when it fits none of ``samples``, or leaves labels unnamed in most of
    them (a partial map, e.g. one without the scar labels), unless ``allow_unnamed`` (scar from
    intensity asked for explicitly). A single odd mask among fitting ones is left to its own case's
    error (and ``PartialMapWatch`` stops the batch if more follow)."""
    if not samples:
        return
    fits = [label_fit(labels, label_map) for _, labels in samples]
    partial = [(str(path), labels) for (path, labels), fit in zip(samples, fits) if fit == "partial"]
    if partial and ("fits" not in fits or (not allow_unnamed and 2 * len(partial) > len(samples))):
        raise partial_map_error(where, label_map, partial)
    if "fits" not in fits:
        found = sorted(set().union(*(labels for _, labels in samples)))
        names = ", ".join(path.name for path, _ in samples)
        raise InputError(
            f"{where}: {_described(label_map)} fits none of the first {len(samples)} mask(s) ({names}), "
            f"which hold label(s) {_join(found)}; {_advice(labels for _, labels in samples)}.",
            setting="labels",
        )


class PartialMapWatch:
    """``run_batch``'s ``stop_if``: stops the batch once ``limit`` masks showed labels the map leaves
    unnamed (or, for DICOM SEG/RTSTRUCT masks, structure names the name map does not know), with one
    sentence instead of one failure per case.

    Example:
        >>> watch = PartialMapWatch(PRESETS["acdc"], "cohort", limit=1)
        >>> details = {"kind": "label_map", "fit": "partial", "mask": "c1.nii.gz", "present": [1, 2, 3, 4]}
        >>> watch("c1", "...", details)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        lgerisk.errors.InputError: cohort: labels='acdc' (...) leaves label(s) 4 unnamed in c1.nii.gz ...
    """

    def __init__(self, label_map: LabelMap, where: str, limit: int = PARTIAL_MAP_LIMIT) -> None:
        self.label_map, self.where, self.limit = label_map, where, limit
        self.masks: list[tuple[str, set[int]]] = []
        self.named: list[tuple[str, list[str]]] = []

    def __call__(self, case_id: str, message: str, details: Mapping[str, object] | None) -> None:
        """Note one failed case; raise ``InputError`` when the map is shown to be partial."""
        if details and details.get("kind") == "label_map" and details.get("fit") == "partial":
            self.masks.append((str(details["mask"]), set(cast("list[int]", details["present"]))))  # LabelMapError's
            if len(self.masks) >= self.limit:
                raise partial_map_error(self.where, self.label_map, self.masks)
        if details and details.get("kind") == "name_map" and details.get("fit") == "partial":
            self.named.append((str(details["mask"]), list(cast("list[str]", details["names"]))))  # NameMapError's
            if len(self.named) >= self.limit:
                raise name_map_error(self.where, self.label_map, self.named)


def _join(values: tuple[int, ...] | list[int]) -> str:
    return ", ".join(str(v) for v in values)
