"""Does a scan get the same risk alone, in a batch and with ``--jobs N`` on this machine? (bit for bit)

    python benchmarks/identity.py --model RUN --data COHORT [--cases 64] [--jobs 4] [--device cpu]

``lgerisk predict`` promises a scan the same record alone or in a batch, at any ``--jobs``. That holds only
if (1) a worker process prepares the same input tensor as the command's own process and (2) the network gives
a scan the same risk whichever scans share its pass and whatever its place in it. The test suite checks both on
the machine it runs on; this script checks them on any machine (CPU kernels and thread counts differ), at full
float64 precision rather than at the 6 decimals a predictions table keeps:

1. inputs: each case's tensor and head inputs made in this process and by ``--jobs`` forked workers, byte
   for byte;
2. network: each tensor's risk alone (a pass padded with zeros, as ``lgerisk predict one.nii.gz`` runs it),
   in passes of the cases in order, and in passes of the cases in reverse order (other companions, other places);
3. threads: checks 2 again at the torch threads a ``--jobs`` batch runs its network with (the cores its workers
   leave, ``lgerisk.batch.network_threads``) and at one thread, and the alone risks at the process's thread count
   against each of them (binding for the batch's count: a scan predicted alone runs at the process's threads;
   informative for one thread);
4. precision: the alone risks against a float64 copy of the model on the CPU (informative: float32 rounding
   carried through the network and its Cox head; on another device, how far apart the two devices can be).

``--layout channels-last`` runs the checks on the layout lgerisk used before (for comparison). A line also gives
the network's time a scan at both thread counts.

Prints one line per check: how many cases differ and the largest |difference|. Exit status 1 if check 1, check
2 at the process's or the batch's torch threads, check 3 between those two, or the model loaded in a background
thread (as the command loads it) found a difference.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if importlib.util.find_spec("lgerisk") is None:  # a checkout, not installed (e.g. on a lent GPU machine)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Inputs = tuple[Any, Any]
"""A stack of network inputs ``(N, C, D, H, W)`` and of head inputs ``(N, n)`` (``None``: the head takes none)."""


def _prepare(job: tuple[Any, Any, Path]) -> tuple[Any, Any]:
    preparer, case, work = job
    scan = preparer.scan(case, work / case.case_id)
    return scan.tensor, scan.tabular


def prepared_inputs(preparer: Any, cases: list[Any], work: Path, jobs: int) -> tuple[list[Any], list[Any]]:
    """((tensor, head inputs) made in this process, the same made by ``jobs`` forked workers) of ``cases``."""
    import multiprocessing

    from lgerisk.batch import worker_start_method

    here = [_prepare((preparer, case, work / "here")) for case in cases]
    with multiprocessing.get_context(worker_start_method(None)).Pool(jobs) as pool:  # as lgerisk's batches start
        there = pool.map(_prepare, [(preparer, case, work / "workers") for case in cases], chunksize=1)
    return here, there


def _same_bytes(first: Any, second: Any) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return bool(first.shape == second.shape and first.tobytes() == second.tobytes())


def differences(first: list[float], second: list[float]) -> tuple[int, float]:
    """(how many pairs differ at all, the largest absolute difference)."""
    pairs = [abs(a - b) for a, b in zip(first, second, strict=True)]
    return sum(p != 0 for p in pairs), max(pairs, default=0.0)


def _alone(predictor: Any, inputs: Inputs) -> list[float]:
    images, tabular = inputs
    return [
        predictor.risks(images[i : i + 1], None if tabular is None else tabular[i : i + 1])[0]
        for i in range(len(images))
    ]


def _reversed(inputs: Inputs) -> Inputs:
    images, tabular = inputs
    return images[::-1].copy(), None if tabular is None else tabular[::-1].copy()


Check = tuple[int, float, bool]
"""(how many cases differ, the largest |difference|, whether a difference breaks lgerisk predict's promise)."""


def thread_counts(batch: int | None = None) -> Iterator[int]:
    """The process's torch thread count, then ``batch`` (given), then 1, each once, set while the caller's loop
    body runs; the process's count is restored after."""
    import torch

    from lgerisk.runtime import torch_threads

    threads = torch.get_num_threads()
    for count in dict.fromkeys((threads, batch or threads, 1)):
        with torch_threads(count):
            yield count


def network_checks(predictor: Any, inputs: Inputs, batch_threads: int | None = None) -> dict[str, Check]:
    """The risks of ``inputs`` alone against in-order and reversed passes, at the process's torch threads and at
    ``batch_threads`` (binding: what lgerisk predict runs alone and in a batch) and at one thread; the alone
    risks at the process's thread count against the others (binding for ``batch_threads``) and against float64
    (informative)."""
    import torch

    threads = torch.get_num_threads()
    checks: dict[str, Check] = {}
    alone_at: dict[int, list[float]] = {}
    for count in thread_counts(batch_threads):
        alone = _alone(predictor, inputs)
        in_order = predictor.risks(*inputs)
        reverse = predictor.risks(*_reversed(inputs))[::-1]
        alone_at[count] = alone
        binding = count in (threads, batch_threads)
        checks[f"{count} thread(s): alone vs passes in order"] = (*differences(alone, in_order), binding)
        checks[f"{count} thread(s): alone vs passes in reverse order"] = (*differences(alone, reverse), binding)
    for count, risks in alone_at.items():
        if count != threads:
            checks[f"alone at {threads} threads vs at {count}"] = (
                *differences(alone_at[threads], risks),
                count == batch_threads,
            )
    checks["precision: alone vs a float64 copy of the model on the CPU"] = (
        *differences(alone_at[threads], float64_risks(predictor, inputs)),
        False,
    )
    return checks


def float64_risks(predictor: Any, inputs: Inputs) -> list[float]:
    """The risks of ``inputs`` from a float64 copy of the model on the CPU (the precision reference)."""
    import copy

    import torch

    model = copy.deepcopy(predictor.model).to("cpu", torch.float64)
    images, tabular = inputs
    with torch.no_grad():
        return [
            float(
                model(
                    torch.from_numpy(images[i : i + 1]).double(),
                    None if tabular is None else torch.from_numpy(tabular[i : i + 1]).double(),
                )
            )
            for i in range(len(images))
        ]


def _loaded_in_a_thread(model: Path, device: str) -> Any:
    import threading

    from lgerisk.inference import RiskPredictor

    loaded: list[Any] = []
    thread = threading.Thread(target=lambda: loaded.append(RiskPredictor.load(model, device=device)))
    thread.start()
    thread.join()
    return loaded[0]


def network_seconds(predictor: Any, inputs: Inputs, repeats: int = 3) -> dict[int, float]:
    """Seconds a scan of the network (passes of 4, best of ``repeats``) at the process's torch threads and at 1."""
    import time

    seconds: dict[int, float] = {}
    for count in thread_counts():
        predictor.risks(*inputs)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            predictor.risks(*inputs)
            best = min(best, time.perf_counter() - started)
        seconds[count] = best / len(inputs[0])
    return seconds


def _with_layout(predictor: Any, layout: str) -> Any:
    import torch

    if layout == "channels-last":  # the weights' layout sets the layout of every activation after them
        predictor.model = predictor.model.to(memory_format=torch.channels_last_3d)
    return predictor


def run(
    model: Path, data: Path, cases: int, jobs: int, device: str, work: Path, layout: str = "contiguous"
) -> tuple[list[str], bool]:
    """The checks' lines, and whether a binding check (1; 2 at the threads lgerisk predict uses; the model
    loaded in a background thread) found a difference."""
    import os

    import numpy as np

    from lgerisk.inference import ScanPreparer
    from lgerisk.io.cohort import discover_cohort

    preparer = ScanPreparer.load(model)
    chosen = list(discover_cohort(data).cases)[:cases]
    here, there = prepared_inputs(preparer, chosen, work, jobs)  # before torch is imported: forking is safe
    unequal = sum(not (_same_bytes(a[0], b[0]) and _same_bytes(a[1], b[1])) for a, b in zip(here, there))

    from lgerisk.inference import RiskPredictor
    from lgerisk.runtime import reuse_freed_memory

    reuse_freed_memory()  # as lgerisk predict runs the network
    predictor = _with_layout(RiskPredictor.load(model, device=device), layout)
    images = np.stack([tensor for tensor, _ in here])
    tabular = None if here[0][1] is None else np.stack([values for _, values in here])
    lines = [
        f"{len(chosen)} cases, {os.cpu_count()} CPU cores, device {device}, {layout} model",
        f"inputs: this process vs {jobs} workers: {unequal} differ",
    ]
    failed = unequal > 0
    import torch

    from lgerisk.batch import network_threads

    checks = network_checks(predictor, (images, tabular), network_threads(jobs, torch.get_num_threads()))
    threaded = _with_layout(_loaded_in_a_thread(model, device), layout)
    checks["alone: model loaded in a background thread (as lgerisk predict does) vs here"] = (
        *differences(_alone(predictor, (images, tabular)), _alone(threaded, (images, tabular))),
        True,
    )
    timing = ", ".join(
        f"{1000 * t:.1f} ms at {n} thread(s)" for n, t in network_seconds(predictor, (images, tabular)).items()
    )
    lines.append(f"network ({layout}): a scan takes {timing} (passes of 4, best of 3)")
    return lines + report(checks), failed or broken(checks)


def report(checks: dict[str, Check]) -> list[str]:
    """One line a check."""
    return [
        f"risks: {name}: {count} differ, largest |difference| {largest:.3g}"
        for name, (count, largest, _) in checks.items()
    ]


def broken(checks: dict[str, Check]) -> bool:
    """Whether a binding check found a difference."""
    return any(count > 0 and binding for count, _, binding in checks.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a cohort folder (images/, masks/) or manifest")
    parser.add_argument("--cases", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, default=Path("bench-out/identity"))
    parser.add_argument(
        "--layout",
        choices=("contiguous", "channels-last"),
        default="contiguous",
        help="the model's memory layout: contiguous is what lgerisk runs; channels-last, the earlier, lossy one",
    )
    args = parser.parse_args(argv)
    lines, failed = run(args.model, args.data, args.cases, args.jobs, args.device, args.work, args.layout)
    print("\n".join(lines))
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
