"""GPU throughput and memory of the pretraining step and of the risk model's inference, AMP on and off.

    python benchmarks/gpu.py                           # one CUDA GPU: the full grid, under 8 minutes
    python benchmarks/gpu.py --device cpu --tiny       # the same code on a tiny grid (what the tests run)

For each encoder width (16, 32, 64) and batch size (8, 16, 32, 64), with AMP off and on (bfloat16 where the
GPU supports it, else float16 with a gradient scaler): the **pretraining step** exactly as ``lgerisk
pretrain`` takes it (``ContrastiveModel``: two augmented views through the image encoder, the radiomics MLP,
the hybrid InfoNCE + NT-Xent objective, backward, AdamW), timed after warm-up with the device synchronised;
volumes/s counts both views. Then the **risk model's inference** (``SurvivalModel``: encoder + linear Cox head,
eval mode, no gradients) in batches of 32: scans/s, the network part of ``lgerisk predict`` (preprocessing and
radiomics stay on the CPU and are measured by benchmarks/predict.py and benchmarks/radiomics.py). Input tensors
are random, of the default shape 2 x 12 x 96 x 96 (``--tiny``: 2 x 4 x 32 x 32) and already on the device, so
the figures are the model's, not the data path's. Peak memory: ``torch.cuda.max_memory_allocated`` (on the CPU,
the process's peak resident set, which only grows). A setting that runs out of memory is reported, not fatal.
Writes ``--out`` (CSV) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

FULL = {"widths": (16, 32, 64), "batches": (8, 16, 32, 64), "shape": (2, 12, 96, 96), "steps": 12, "warmup": 3}
TINY = {"widths": (4,), "batches": (2, 4), "shape": (2, 4, 32, 32), "steps": 2, "warmup": 1}
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


def train_step_rate(
    width: int, batch: int, amp: bool, device: Any, shape: tuple[int, ...], steps: int, warmup: int
) -> dict[str, Any]:
    """Volumes/s and peak memory of ``steps`` timed pretraining steps (after ``warmup`` untimed ones)."""
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
    objective = HybridObjective(ObjectiveConfig(), embedding_dim=config.projection_dim).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = _amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda" and dtype == torch.float16)
    view1 = torch.randn(batch, *shape, device=device)
    view2 = torch.randn(batch, *shape, device=device)
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
    """The whole grid as a DataFrame: one row per (task, width, batch, amp)."""
    import pandas as pd
    import torch

    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; use --device cpu --tiny to check the script runs.")
    grid = TINY if tiny else FULL
    if amp_modes is None:
        amp_modes = (False, True) if device.type == "cuda" else (False,)
    rows: list[dict[str, Any]] = []
    for amp in amp_modes:
        for width in grid["widths"]:
            for batch in grid["batches"]:
                row = {"task": "pretrain step", "width": width, "batch": batch, "amp": amp}
                try:
                    row.update(train_step_rate(width, batch, amp, device, grid["shape"], grid["steps"], grid["warmup"]))
                except torch.cuda.OutOfMemoryError as exc:  # report and go on
                    row["error"] = "out of memory" if _is_oom(exc) else str(exc)[:80]
                rows.append(row)
                log(row)
            row = {"task": "predict (inference)", "width": width, "batch": 32 if not tiny else 4, "amp": amp}
            try:
                row.update(
                    inference_rate(width, amp, device, grid["shape"], row["batch"], grid["steps"], grid["warmup"])
                )
            except torch.cuda.OutOfMemoryError as exc:
                row["error"] = "out of memory" if _is_oom(exc) else str(exc)[:80]
            rows.append(row)
            log(row)
    return pd.DataFrame(rows)


def markdown(table: Any) -> str:
    """The results as a Markdown table (rates to 1 decimal, memory in MB)."""
    lines = [
        "| task | width | batch | AMP | volumes/s (training, 2 views) or scans/s | step ms | peak memory MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.to_dict(orient="records"):
        rate = row.get("volumes_per_s") if row["task"] == "pretrain step" else row.get("scans_per_s")
        error = row.get("error")
        if isinstance(error, str):
            lines.append(
                f"| {row['task']} | {row['width']} | {row['batch']} | {'on' if row['amp'] else 'off'} | "
                f"{error} | – | – |"
            )
            continue
        step = row.get("step_ms")
        step_text = f"{step:.1f}" if isinstance(step, float) and step == step else "–"
        lines.append(
            f"| {row['task']} | {row['width']} | {row['batch']} | {'on' if row['amp'] else 'off'} | "
            f"{rate:.1f} | {step_text} | {row['peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny grid and input (checks the script on a CPU)")
    parser.add_argument("--out", type=Path, default=Path("gpu_benchmark.csv"))
    args = parser.parse_args(argv)
    import torch

    started = time.perf_counter()
    name = (
        torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith("cuda") and torch.cuda.is_available()
        else platform.processor() or platform.machine()
    )
    print(f"device {args.device} ({name}), torch {torch.__version__}, {os.cpu_count()} CPU cores", flush=True)
    table = run(args.device, args.tiny, log=lambda row: print(row, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(markdown(table))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
