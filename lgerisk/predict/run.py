"""Risk for new scans with a trained risk model: the library behind ``lgerisk predict``.

A :class:`RiskPredictor` is loaded once (model, card, settings) and then predicts scan after scan:
the model's own preprocessing, the radiomics it needs (only when its head uses them), the tensor,
the risk score (log relative hazard), the risk group from the training tertiles, survival at the
model's horizons from its Breslow baseline hazard, the scar metrics, and warnings wherever the scan
lies outside what the model was trained on. Prediction record (a row in CSV, an object in JSON)::

    case_id, risk_score, risk_group, survival_<h> (one per horizon), scar_percent, greyzone_percent,
    myocardium_mass_g, myocardium_volume_ml, scar_volume_ml, scar_method, model_method,
    model_trained_on_synthetic, scan_synthetic, reliable, unreliable_reasons, warnings

* ``risk_score``: log relative hazard; always given, also when the prediction is not reliable.
* ``risk_group``: ``low``, ``intermediate`` or ``high`` (the training cohort's risk tertiles), or
  ``out of range`` when ``reliable`` is false.
* ``model_trained_on_synthetic``: the model card says the model was trained on synthetic scans.
* ``scan_synthetic``: this scan comes from the synthetic generator (its own marker, see
  :mod:`lgerisk.io.provenance`; never the case id).
* ``reliable``: false when the scan lies outside the model's training ranges (slice spacing and count,
  in-plane spacing, myocardial volume, intensity, scar burden), or when scan and model come from
  different worlds (a real scan and a model trained on synthetic data, or the reverse);
  ``unreliable_reasons`` lists why (joined with ``; `` in CSV, a list in JSON). The numbers stay in
  their columns, the risk group does not.
* ``warnings``: every warning, the reasons above included (``; `` in CSV, a list in JSON).

With ``dicom_seg`` (``--dicom-seg``, needs ``--out FILE``), each scan that is a DICOM series also gets
its scar and grey zone as a DICOM SEG over that series, ``FILE.seg/ID.dcm`` (see
:mod:`lgerisk.io.dicom_seg` for the attributes it keeps).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lgerisk.batch import BatchReport, Outcome, Shard, collect_errors, network_threads, run_batch
from lgerisk.errors import CaseError, InputError
from lgerisk.inference import (
    LIST_FIELDS,
    MODEL_BATCH,
    PreparedScan,
    RiskPredictor,
    ScanPreparer,
    as_number,
    check_device,
    load_predictor,
    model_hash,
)
from lgerisk.io.atomic import write_csv, write_json, write_text
from lgerisk.io.cohort import Case
from lgerisk.reporting import SILENT, Reporter
from lgerisk.runtime import reuse_freed_memory, torch_threads

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Mapping

    from lgerisk.io.labels import PartialMapWatch
    from lgerisk.types import JSONDict, JSONScalar

PREPARED_AHEAD = 24
"""Scans the workers may prepare ahead of the network (``run_batch``'s ``lead``; 4 a worker where that is more):
enough to keep two workers busy while the model loads (torch's import is about a second), about 1 MB each."""
RECORD_VERSION = "4"
"""Changes whenever the prediction record gains or changes fields (stored predictions are then redone)."""


# ---------------------------------------------------------------- batches


def _part(parts: Path, case_id: str) -> Path:
    return parts / "cases" / f"{case_id}.json"


def _covariates_used(
    case: Case, clinical: Mapping[str, Mapping[str, JSONScalar]], names: list[str]
) -> dict[str, float]:
    """The values of the model's covariates for ``case`` (what a stored prediction depends on beyond the scan)."""
    given = clinical.get(case.case_id)
    given = given if given is not None else (case.covariates or {})
    return {name: as_number(given.get(name)) for name in names}


def seg_folder(out: str | os.PathLike[str]) -> Path:
    """Where ``predict --dicom-seg --out FILE`` writes the DICOM SEGs: ``FILE.seg/``."""
    return Path(f"{out}.seg")


def _seg_path(case: Case, seg_dir: Path | None) -> Path | None:
    return seg_dir / f"{case.case_id}.dcm" if seg_dir is not None else None


@dataclass(frozen=True)
class _Prepared:
    """What a worker sends the parent for one case: the network's inputs and the part file's keys."""

    scan: PreparedScan
    image_sha256: str | None
    mask_sha256: str | None
    covariates: dict[str, float]


def _prepare_one(
    case: Case,
    preparer: ScanPreparer,
    parts: Path,
    clinical: Mapping[str, Mapping[str, JSONScalar]],
    seg_dir: Path | None = None,
    dicom_seg: bool = False,
) -> _Prepared:
    """One case made ready for the network (a worker's share: no torch, no model). A finished part of another scan
    under the same id (the same id in two manifests whose shards write to one output) fails the case rather than
    being replaced."""
    from lgerisk.io.layout import other_source, source_hash

    part = _part(parts, case.case_id)
    try:
        stored = json.loads(part.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    earlier = other_source(stored, case) if isinstance(stored, dict) else None
    if earlier is not None:
        raise CaseError(
            f"{case.image}: case id {case.case_id!r} is already predicted in {parts} from another scan, {earlier}; "
            f"give one of them another id, predict it into another file, or remove {part} to replace it."
        )
    part.unlink(missing_ok=True)
    seg_path = _seg_path(case, seg_dir)
    if seg_path is not None:
        seg_path.unlink(missing_ok=True)  # never a SEG of older inputs beside a new prediction
    given = clinical.get(case.case_id)
    scan = preparer.scan(case, parts / "work", given, seg_path if dicom_seg else None)
    return _Prepared(
        scan,
        source_hash(case.image),
        source_hash(case.mask),
        _covariates_used(case, clinical, list(preparer.tabular.covariates)),
    )


class _Network:
    """The parent's stage of a prediction batch: the model, loaded once, runs on ``MODEL_BATCH`` prepared
    scans at a time while the workers prepare the next; each finished record is written to its part file.

    The model loads in a background thread from :meth:`start`, called by ``run_batch`` once the workers are
    forked (a forked child of a process importing torch can hang) or, with no workers, before the first scan
    is prepared: either way scans are prepared while torch is imported and the model read. While workers run,
    the network runs on the cores they leave (``lgerisk.batch.network_threads``).
    """

    def __init__(
        self, load: Callable[[], RiskPredictor], preparer: ScanPreparer, key: str, keep_freed_memory: bool = False
    ) -> None:
        self.load, self.preparer, self.key, self.keep_freed_memory = load, preparer, key, keep_freed_memory
        self.workers = 0
        self.threads: int | None = None
        self.parts = Path()
        self.held: list[tuple[Case, _Prepared]] = []
        self._predictor: RiskPredictor | None = None
        self._failure: BaseException | None = None
        self._checked = False
        self._thread: threading.Thread | None = None

    def writing_to(self, parts: Path) -> _Network:
        """This stage, writing each case's part file under ``parts``."""
        self.parts = parts
        return self

    def start(self, workers: int) -> None:
        """Load the model in a background thread (the ``workers``, if any, are running)."""
        import threading

        self.workers = workers
        self._keep_memory()
        if self._thread is None and self._predictor is None:
            self._thread = threading.Thread(target=self._load_in_background, name="lgerisk-model-load", daemon=True)
            self._thread.start()

    def _keep_memory(self) -> None:
        """With ``keep_freed_memory``, this process (never a worker: it is called after they are forked) keeps
        freed memory for the network's next pass (``reuse_freed_memory``)."""
        if self.keep_freed_memory:
            reuse_freed_memory()
            self.keep_freed_memory = False  # done: the setting is the process's

    def _load_in_background(self) -> None:
        try:
            self._predictor = self.load()
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread by ``predictor``
            self._failure = exc

    @property
    def predictor(self) -> RiskPredictor:
        """The loaded model (waiting for the background load, re-raising its error)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        elif self._predictor is None and self._failure is None:
            self._predictor = self.load()  # in the main thread: its errors (and Ctrl-C) go straight up
        if self._failure is not None:
            raise self._failure
        assert self._predictor is not None
        if not self._checked:
            if self._predictor.preparer != self.preparer:  # the card and the weights' own record of the inputs
                raise InputError(
                    f"{self._predictor.model_dir}: the model card and the model file disagree on its inputs."
                )
            self._checked = True
        return self._predictor

    def push(self, case: Case, value: _Prepared) -> list[Outcome]:
        """Hold one prepared scan; run the network once ``MODEL_BATCH`` are held."""
        self.held.append((case, value))
        return self.flush() if len(self.held) >= MODEL_BATCH else []

    def flush(self) -> list[Outcome]:
        """Predict the held scans and write their part files."""
        held, self.held = self.held, []
        if not held:
            return []
        self._keep_memory()  # where start() was not called (workers forked as needed)
        predictor = self.predictor
        if self.threads is None and self.workers:
            import torch

            self.threads = network_threads(self.workers, torch.get_num_threads())  # torch's count in this thread
        with torch_threads(self.threads):
            predictions = predictor.predict_scans([value.scan for _, value in held])
        from lgerisk.io.layout import source_name

        outcomes: list[Outcome] = []
        for (case, value), prediction in zip(held, predictions):
            record = prediction.values
            write_json(
                _part(self.parts, case.case_id),
                {
                    "key": self.key,
                    "source_image": source_name(case.image),
                    "image_sha256": value.image_sha256,
                    "mask_sha256": value.mask_sha256,
                    "covariates": value.covariates,
                    "record": record,
                },
                sort_keys=False,
            )
            outcomes.append((case, True, record, None))
        return outcomes


def _is_predicted(
    case: Case,
    parts: Path,
    key: str,
    clinical: Mapping[str, Mapping[str, JSONScalar]] | None = None,
    covariates: list[str] | None = None,
    seg_dir: Path | None = None,
) -> bool:
    """Whether ``case`` is predicted from its current inputs (and, given ``seg_dir``, has its SEG there)."""
    from lgerisk.io.dicom_seg import has_dicom_series
    from lgerisk.io.layout import source_hash

    seg_path = _seg_path(case, seg_dir)
    if seg_path is not None and has_dicom_series(case.image) and not seg_path.is_file():
        return False
    try:
        stored = json.loads(_part(parts, case.case_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    used = _covariates_used(case, clinical or {}, covariates or [])
    return (
        stored.get("key") == key
        and stored.get("image_sha256") == source_hash(case.image)
        and stored.get("mask_sha256") == source_hash(case.mask)
        and json.dumps(stored.get("covariates") or {}) == json.dumps(used)
    )


def _is_preprocessed(case: Case) -> bool:
    """Whether ``case`` is a case of a preprocess output (``cases/ID/{image,mask}.nii.gz`` + ``qc.json``), whose
    mask holds lgerisk's internal labels rather than the label map's."""
    from lgerisk.io.layout import IMAGE_FILE, MASK_FILE, QC_FILE

    image = Path(case.image)
    return image.name == IMAGE_FILE and case.mask == image.parent / MASK_FILE and (image.parent / QC_FILE).is_file()


def _check_masks_fit(cases: list[Case], preparer: ScanPreparer) -> PartialMapWatch | None:
    """``lgerisk.preprocess.pipeline.check_masks_fit`` on the raw scans' label-image masks, with the label map
    predict reads them with (the model's, or ``labels``): one sentence naming the preset that fits, instead of a
    failure a case. DICOM SEG/RTSTRUCT masks are left to their cases (the model's scar method is not the user's
    to change). Returns ``run_batch``'s ``stop_if``."""
    from lgerisk.preprocess.pipeline import check_masks_fit

    masks = [case.mask for case in cases if not _is_preprocessed(case)]
    folders = sorted({os.path.abspath(Path(mask).parent) for mask in masks if mask is not None})
    try:
        where = os.path.commonpath(folders) if folders else "predict"
    except ValueError:  # folders on different drives
        where = "predict"
    return check_masks_fit(masks, preparer.preprocess, where, names=False) if masks else None


def predict_cases(
    cases: list[Case],
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    fmt: str = "csv",
    device: str = "cpu",
    labels: str | None = None,
    jobs: int = 1,
    shard: Shard | None = None,
    clinical: Mapping[str, Mapping[str, JSONScalar]] | None = None,
    dicom_seg: bool = False,
    reporter: Reporter = SILENT,
    keep_freed_memory: bool = False,
) -> tuple[BatchReport, list[JSONDict], str]:
    """Predict ``cases`` (resumable when ``out`` is a file: finished cases are kept in ``OUT.parts/``);
    returns (report, records in case order, the rendered output text). ``dicom_seg``: also write each
    DICOM-series scan's scar and grey zone as a DICOM SEG, ``OUT.seg/ID.dcm`` (needs ``out``).
    ``keep_freed_memory``: this process keeps freed memory for the network's next pass, for good
    (``lgerisk.runtime.reuse_freed_memory``; much faster on the CPU; ``lgerisk predict`` sets it, a
    library caller decides whether its process may keep its peak memory)."""
    import tempfile

    from lgerisk.io.dicom_seg import check_seg_sources

    if fmt not in ("csv", "json"):
        raise InputError(f"fmt={fmt!r}: choose csv or json.", setting="fmt")
    if dicom_seg:
        if out is None:
            raise InputError(
                "dicom_seg=True needs an output file, out=FILE (the DICOM SEGs are written beside it, in FILE.seg/).",
                setting="dicom_seg",
            )
        check_seg_sources([case.image for case in cases], "predict")
    seg_dir = seg_folder(out) if out is not None else None
    check_device(device)  # a device that is not there fails before any work
    preparer = ScanPreparer.load(model_dir, labels)  # a bad model folder fails here, before any work
    watch = _check_masks_fit(cases, preparer)  # a label map that cannot fit the masks: one sentence, before any work
    key = model_hash(model_dir, preparer.preprocess) + (labels or "") + f"-r{RECORD_VERSION}"
    selected = (shard or Shard()).select(cases)
    load = partial(load_predictor, str(model_dir), device, labels)
    network = _Network(load, preparer, key, keep_freed_memory)
    clinical = clinical or {}
    with tempfile.TemporaryDirectory(prefix="lgerisk-predict-") as scratch:
        parts = Path(f"{out}.parts") if out is not None else Path(scratch)
        parts.mkdir(parents=True, exist_ok=True)
        work = partial(
            _prepare_one,
            preparer=preparer,
            parts=parts,
            clinical=clinical,
            seg_dir=seg_dir,
            dicom_seg=dicom_seg,
        )
        is_done = partial(
            _is_predicted,
            parts=parts,
            key=key,
            clinical=clinical,
            covariates=list(preparer.tabular.covariates),
            seg_dir=seg_dir if dicom_seg else None,
        )
        report = run_batch(
            selected,
            work,
            is_done,
            parts,
            jobs=jobs,
            description="predict",
            reporter=reporter,
            start_method=None if "torch" not in sys.modules else "spawn",  # forked before torch: fast, safe
            stage=network.writing_to(parts),
            lead=PREPARED_AHEAD,
            stop_if=watch,
        )
        every = cases if out is not None else selected  # a file gathers all shards' finished cases
        records: list[JSONDict] = []
        for case in every:
            if case.case_id in report.results:
                records.append(report.results[case.case_id])
            elif is_done(case):  # finished earlier, or by another shard, from these very inputs
                records.append(json.loads(_part(parts, case.case_id).read_text(encoding="utf-8"))["record"])
        text = render(records, fmt)
        if out is not None:
            errors = collect_errors(parts)
            write_text(Path(out), text)
            errors_path = Path(f"{out}.errors.csv")
            if len(errors):
                write_csv(errors_path, errors)
            else:
                errors_path.unlink(missing_ok=True)
    return report, records, text


def render(records: list[JSONDict], fmt: str) -> str:
    """Records as CSV (warnings and unreliable reasons joined with '; ') or a JSON list."""
    if fmt == "json":
        return json.dumps(records, indent=2, sort_keys=False) + "\n"
    if not records:
        return ""  # not a lone empty line (every case failed)
    import csv
    import io

    columns = list(dict.fromkeys(key for record in records for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                **record,
                **{
                    name: "; ".join(cast("list[str]", record.get(name) or [])) for name in LIST_FIELDS if name in record
                },
            }
        )
    return buffer.getvalue()
