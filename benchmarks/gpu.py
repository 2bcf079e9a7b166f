"""GPU throughput and memory of the pretraining step and of the risk model's inference, AMP on and off; and
``lgerisk predict`` end to end on the GPU against the CPU, with its outputs checked.

    python benchmarks/gpu.py --predict-model RUN       # one CUDA GPU: grid + end-to-end predict, about 5 minutes
    python benchmarks/gpu.py                           # the grid alone
    python benchmarks/gpu.py --device cpu --tiny       # the same code on a tiny grid (what the tests run)

**The grid.** For each encoder width (16, 32, 64) and batch size (8, 16, 32, 64), with AMP off and on (bfloat16
where the GPU supports it, else float16 with a gradient scaler): the **pretraining step** as ``lgerisk
pretrain`` takes it with the hybrid objective (``ContrastiveModel``: two views through the image encoder, the
radiomics MLP, InfoNCE + NT-Xent, backward, AdamW), timed after warm-up with the device synchronised;
volumes/s counts both views. Candidate ways of running the step (``VARIANTS``: cuDNN autotuning, channels-last
tensors) are timed at width 32, batch 32. Then the **risk model's inference** (``SurvivalModel``: encoder +
linear Cox head, eval mode, no gradients, torch's default float32 settings, i.e. TF32 convolutions) in passes
of 4 (what ``lgerisk predict`` runs) and 32. Input tensors are random, of the default shape 2 x 12 x 96 x 96
(``--tiny``: 2 x 4 x 32 x 32) and already on the device: the model's speed, not the data path's. Peak memory:
``torch.cuda.max_memory_allocated`` (on the CPU, the process's peak resident set, which only grows). A setting
that runs out of memory is reported, not fatal. Writes ``--out`` (CSV) and prints a Markdown table.

**End to end** (``--predict-model RUN``): ``lgerisk synth`` makes ``--cases`` SYNTHETIC scans in ``--work``
(in the background, while the grid runs); then ``lgerisk predict --data`` on the GPU and on the CPU at each
``--jobs``: scans/s as a user sees them (start-up and model load included); whether each device's tables are
the same bytes at every ``--jobs``; how far the GPU's risks are from the CPU's; and ``--alone`` scans
predicted one by one against their batch rows. The command runs from a checkout without installing lgerisk
(``python -m lgerisk.cli`` with the checkout on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("lgerisk") is None:  # a checkout, not installed (e.g. on a lent GPU machine)
    sys.path.insert(0, str(ROOT))

FULL: dict[str, Any] = {
    "widths": (16, 32, 64),
    "batches": (8, 16, 32, 64),
    "inference_batches": (4, 32),  # 4: what lgerisk predict runs a pass (inference.MODEL_BATCH)
    "variant_at": (32, 32),
    "shape": (2, 12, 96, 96),
    "steps": 12,
    "warmup": 3,
}
TINY: dict[str, Any] = {
    "widths": (4,),
    "batches": (2, 4),
    "inference_batches": (4,),
    "variant_at": (4, 2),
    "shape": (2, 4, 32, 32),
    "steps": 2,
    "warmup": 1,
}
N_FEATURES = 132  # the length of a radiomics view (any length works: the MLP is a small part of the step)


def _peak_mb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _amp_dtype(device: Any) -> Any:
    import torch

    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


VARIANTS = ("default", "cudnn.benchmark", "channels-last", "channels-last + cudnn.benchmark")
"""How the step is run: ``default`` is what ``lgerisk pretrain`` does today; the others are candidates, timed on
one setting (width 32, batch 32) so a change to the training loop can be argued from a figure."""


@contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    import torch

    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def train_step_rate(
    width: int,
    batch: int,
    amp: bool,
    device: Any,
    shape: tuple[int, ...],
    steps: int,
    warmup: int,
    variant: str = "default",
) -> dict[str, Any]:
    """Volumes/s and peak memory of ``steps`` timed pretraining steps (after ``warmup`` untimed ones), run the
    way ``variant`` (one of ``VARIANTS``) says."""
    import torch

    from lgerisk.models.contrastive import ContrastiveModel, ContrastiveModelConfig
    from lgerisk.models.encoder import EncoderConfig
    from lgerisk.models.radiomics import RadiomicsEncoderConfig
    from lgerisk.objectives.contrastive import HybridObjective, ObjectiveConfig

    torch.manual_seed(0)
    config = ContrastiveModelConfig(
        EncoderConfig(in_channels=shape[0], width=width), RadiomicsEncoderConfig(n_features=N_FEATURES)
    )
    model = ContrastiveModel(config).to(device).train()
    layout = torch.channels_last_3d if "channels-last" in variant else torch.contiguous_format
    model = model.to(memory_format=layout)  # type: ignore[call-overload]
    objective = HybridObjective(ObjectiveConfig(), embedding_dim=config.projection_dim).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = _amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda" and dtype == torch.float16)
    view1 = torch.randn(batch, *shape, device=device).contiguous(memory_format=layout)
    view2 = torch.randn(batch, *shape, device=device).contiguous(memory_format=layout)
    radiomics = torch.randn(batch, N_FEATURES, device=device)
    ids = torch.arange(batch, device=device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
            out = model(view1, view2, radiomics)
        loss = objective(out["image_z1"].float(), out["image_z2"].float(), out["radiomics_z"].float(), ids)["loss"]
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    _reset_peak(device)
    with _cudnn_benchmark("cudnn.benchmark" in variant):
        for _ in range(warmup):
            step()
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
    seconds = time.perf_counter() - started
    return {
        "volumes_per_s": 2 * batch * steps / seconds,
        "step_ms": 1000 * seconds / steps,
        "peak_mb": _peak_mb(device),
    }


def inference_rate(
    width: int, amp: bool, device: Any, shape: tuple[int, ...], batch: int, steps: int, warmup: int
) -> dict[str, Any]:
    """Scans/s and peak memory of the risk model's forward pass in batches of ``batch``."""
    import torch

    from lgerisk.models.encoder import EncoderConfig
    from lgerisk.models.survival import SurvivalModel, SurvivalModelConfig

    torch.manual_seed(0)
    model = SurvivalModel(SurvivalModelConfig(EncoderConfig(in_channels=shape[0], width=width))).to(device).eval()
    scans = torch.randn(batch, *shape, device=device)
    _reset_peak(device)
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=_amp_dtype(device), enabled=amp):
        for _ in range(warmup):
            model(scans)
        _sync(device)
        started = time.perf_counter()
        for _ in range(steps):
            risk = model(scans)
        _sync(device)
    seconds = time.perf_counter() - started
    if not torch.isfinite(risk.float()).all():
        raise RuntimeError("the risk model gave non-finite risks")
    return {"scans_per_s": batch * steps / seconds, "peak_mb": _peak_mb(device)}


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower()


def run(
    device_name: str = "cuda", tiny: bool = False, amp_modes: tuple[bool, ...] | None = None, log: Any = print
) -> Any:
    """The whole grid as a DataFrame: one row per (task, variant, width, batch, amp)."""
    import pandas as pd
    import torch

    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; use --device cpu --tiny to check the script runs.")
    grid = TINY if tiny else FULL
    if amp_modes is None:
        amp_modes = (False, True) if device.type == "cuda" else (False,)
    timing = (grid["shape"], grid["steps"], grid["warmup"])
    rows: list[dict[str, Any]] = []

    def measure(row: dict[str, Any], work: Any) -> None:
        try:
            row.update(work())
        except torch.cuda.OutOfMemoryError as exc:  # report and go on
            row["error"] = "out of memory" if _is_oom(exc) else str(exc)[:80]
        rows.append(row)
        log(row)

    for amp in amp_modes:
        for width in grid["widths"]:
            for batch in grid["batches"]:
                row = {"task": "pretrain step", "variant": "default", "width": width, "batch": batch, "amp": amp}
                measure(row, partial(train_step_rate, width, batch, amp, device, *timing))
            for batch in grid["inference_batches"]:
                row = {"task": "risk-model inference", "variant": "default", "width": width, "batch": batch, "amp": amp}
                measure(row, partial(inference_rate, width, amp, device, grid["shape"], batch, *timing[1:]))
        width, batch = grid["variant_at"]
        for variant in VARIANTS[1:]:
            row = {"task": "pretrain step", "variant": variant, "width": width, "batch": batch, "amp": amp}
            measure(row, partial(train_step_rate, width, batch, amp, device, *timing, variant=variant))
    return pd.DataFrame(rows)


def markdown(table: Any) -> str:
    """The grid as a Markdown table (rates to 1 decimal, memory in MB)."""
    lines = [
        "| task | variant | width | batch | AMP | volumes/s (training, 2 views) or scans/s | step ms | peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.to_dict(orient="records"):
        rate = row.get("volumes_per_s") if row["task"] == "pretrain step" else row.get("scans_per_s")
        start = (
            f"| {row['task']} | {row['variant']} | {row['width']} | {row['batch']} | {'on' if row['amp'] else 'off'} |"
        )
        error = row.get("error")
        if isinstance(error, str):
            lines.append(f"{start} {error} | – | – |")
            continue
        step = row.get("step_ms")
        step_text = f"{step:.1f}" if isinstance(step, float) and step == step else "–"
        lines.append(f"{start} {rate:.1f} | {step_text} | {row['peak_mb']:.0f} |")
    return "\n".join(lines)


# --- lgerisk predict end to end: CPU workers prepare scans, the network runs on the device -------------------


def lgerisk_command() -> list[str]:
    """``lgerisk`` as this interpreter runs it (no console script needed: a checkout on PYTHONPATH will do)."""
    return [sys.executable, "-m", "lgerisk.cli"]


def _environment() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "LGERISK_NO_PROGRESS": "1", "PYTHONPATH": path}


def start_cohort(cohort: Path, cases: int, small: bool) -> subprocess.Popen[bytes] | None:
    """Start ``lgerisk synth`` for a SYNTHETIC cohort in the background (None: it is there already)."""
    if (cohort / "outcomes.csv").is_file():
        made = len(list((cohort / "images").glob("*.nii.gz")))
        if made != cases:
            raise SystemExit(f"{cohort} holds {made} scans, not --cases {cases}: use another --work or --cases {made}.")
        return None
    command = [*lgerisk_command(), "synth", str(cohort), "--cases", str(cases), "--quiet", *(["--small"] * small)]
    return subprocess.Popen(command, env=_environment())


def _forget(out: Path) -> None:
    """Remove a predictions file and its resume parts (a run must not reuse an earlier one's records)."""
    out.unlink(missing_ok=True)
    shutil.rmtree(out.with_name(out.name + ".parts"), ignore_errors=True)


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=_environment(), stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _rows(text: str) -> dict[str, str]:
    """A predictions CSV's lines by case id (the header under ``""``)."""
    lines = text.splitlines()
    return {"": lines[0], **{line.split(",", 1)[0]: line for line in lines[1:]}}


def predict_end_to_end(
    model: Path,
    cohort: Path,
    work: Path,
    devices: tuple[str, ...],
    jobs: tuple[int, ...],
    alone: int,
    log: Any = print,
) -> tuple[Any, list[str]]:
    """``lgerisk predict --data COHORT`` on each device at each ``--jobs``: scans/s (wall time of the whole
    command, start-up and model load included, as a user sees it) and checks of the outputs: every table of a
    device the same bytes as its first; the devices' risk scores against the first device's; the first
    ``alone`` cases predicted one by one in fresh processes against their rows in the batch."""
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    tables: dict[tuple[str, int], str] = {}
    for device in devices:
        for j in jobs:
            out = work / f"predictions-{device.replace(':', '')}-jobs{j}.csv"
            _forget(out)
            command = [*lgerisk_command(), "predict", "--data", str(cohort), "--model", str(model), "--out", str(out)]
            seconds = _timed([*command, "--device", device, "--jobs", str(j), "--quiet"])
            tables[device, j] = out.read_text()
            scans = len(_rows(tables[device, j])) - 1
            row = {"device": device, "jobs": j, "scans": scans, "seconds": seconds, "scans_per_s": scans / seconds}
            row[f"same_bytes_as_jobs_{jobs[0]}"] = tables[device, j] == tables[device, jobs[0]]
            rows.append(row)
            log(row)
    checks = [
        f"{device} against {devices[0]}: " + compare_tables(tables[devices[0], jobs[0]], tables[device, jobs[0]])
        for device in devices[1:]
    ]
    batch = _rows(tables[devices[0], jobs[0]])
    same = 0
    cases = sorted((cohort / "images").glob("*.nii.gz"))[:alone]
    for scan in cases:
        mask = cohort / "masks" / scan.name
        command = [*lgerisk_command(), "predict", str(scan), "--mask", str(mask), "--model", str(model)]
        result = subprocess.run(
            [*command, "--device", devices[0], "--quiet"], check=True, env=_environment(), capture_output=True
        )
        lines = _rows(result.stdout.decode())
        case = scan.name.removesuffix(".nii.gz")
        same += lines[""] == batch[""] and lines[case] == batch[case]
    if cases:
        checks.append(f"{devices[0]}: {same}/{len(cases)} scans predicted alone give the batch's row byte for byte")
    return pd.DataFrame(rows), checks


def compare_tables(reference: str, other: str) -> str:
    """One line on how far two predictions tables (CSV text, the same cases) are apart."""
    import io

    import pandas as pd

    first = pd.read_csv(io.StringIO(reference), dtype={"case_id": str})
    second = pd.read_csv(io.StringIO(other), dtype={"case_id": str})
    joined = first.merge(second, on="case_id", suffixes=("", "_other"), validate="one_to_one")
    if len(joined) != len(first) or len(joined) != len(second):
        raise ValueError(f"the two tables hold other cases ({len(first)}, {len(second)}, {len(joined)} in common)")
    delta = (joined["risk_score"] - joined["risk_score_other"]).abs()
    lines, other_lines = _rows(reference), _rows(other)
    same_rows = sum(lines[case] == other_lines[case] for case in joined["case_id"])
    groups = int((joined["risk_group"] == joined["risk_group_other"]).sum())
    return (
        f"max |risk difference| {delta.max():.2g} (risk scores to 6 decimals), "
        f"risk groups agree {groups}/{len(joined)}, rows byte-identical {same_rows}/{len(joined)}"
    )


def predict_markdown(table: Any) -> str:
    """The end-to-end predict runs as a Markdown table."""
    same = [c for c in table.columns if c.startswith("same_bytes_as_jobs_")][0]
    lines = [
        f"| device | --jobs | scans | seconds | scans/s | same table as --jobs {same.rsplit('_', 1)[1]} |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.to_dict(orient="records"):
        lines.append(
            f"| {row['device']} | {row['jobs']} | {row['scans']} | {row['seconds']:.1f} | {row['scans_per_s']:.1f} | "
            f"{'yes' if row[same] else 'no'} |"
        )
    return "\n".join(lines)


def _integers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny grid and input (checks the script on a CPU)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/gpu/grid.csv"), help="the grid's CSV")
    parser.add_argument("--work", type=Path, default=Path("bench-out/gpu"), help="cohort and predictions folder")
    parser.add_argument("--no-grid", action="store_true", help="skip the model grid (only the end-to-end predict)")
    parser.add_argument("--predict-model", type=Path, help="a risk model folder: also time lgerisk predict end to end")
    parser.add_argument("--cases", type=int, default=256, help="SYNTHETIC scans for the end-to-end predict")
    parser.add_argument("--small", action="store_true", help="small synthetic scans (lgerisk synth --small)")
    parser.add_argument("--jobs", type=_integers, default=(1, 4, 8), help="--jobs values, e.g. 1,4,8")
    parser.add_argument("--alone", type=int, default=4, help="scans also predicted one by one (output check)")
    args = parser.parse_args(argv)
    import torch

    started = time.perf_counter()
    cuda = args.device.startswith("cuda") and torch.cuda.is_available()
    name = torch.cuda.get_device_name(torch.device(args.device)) if cuda else platform.processor() or platform.machine()
    print(f"device {args.device} ({name}), torch {torch.__version__}, {os.cpu_count()} CPU cores", flush=True)
    work = args.work
    cohort = work / "cohort"
    synth = start_cohort(cohort, args.cases, args.small) if args.predict_model else None  # beside the grid
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid = None
    try:
        if not args.no_grid:
            grid = run(args.device, args.tiny, log=lambda row: print(row, flush=True))
            grid.to_csv(args.out, index=False)
            print(markdown(grid), flush=True)
    except BaseException:
        if synth is not None:  # never leave the generator running behind a failed grid
            synth.kill()
            synth.wait()
        raise
    if args.predict_model:
        if synth is not None and synth.wait() != 0:
            raise SystemExit(f"lgerisk synth {cohort} failed (exit {synth.returncode})")
        devices = (args.device, "cpu") if args.device != "cpu" else ("cpu",)
        table, checks = predict_end_to_end(
            args.predict_model, cohort, work, devices, args.jobs, args.alone, log=lambda row: print(row, flush=True)
        )
        table.to_csv(args.out.with_name(args.out.stem + "_predict.csv"), index=False)
        print("SYNTHETIC scans")
        print(predict_markdown(table))
        print("\n".join(checks))
    if grid is not None:
        print(markdown(grid))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
