"""Do the attribution maps look at the myocardium? A measured ratio on SYNTHETIC cases.

    python benchmarks/attribution.py --model bench-out/label-efficiency/seed0/finetune-hybrid-full-1 \\
        --data bench-out/label-efficiency/seed1/synth --cases 40

For each case: Grad-CAM (last 3D block) and integrated gradients (32 steps) of the model's risk,
and the ratio mean |attribution| per voxel inside the myocardium / outside it (1 = no preference;
uniform attribution gives 1). Reported as the median and interquartile range over the cases, for
the trained model and for the same architecture with the encoder's weights re-initialised (same
head), so the ratio the architecture gives by itself is visible beside the learned one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path[:] = [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]  # this folder's radiomics.py must not shadow pyradiomics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args()
    os.environ.setdefault("LGERISK_NO_PROGRESS", "1")
    import torch

    from lgerisk.data.tensors import TensorSpec, case_tensor
    from lgerisk.explain.attribution import grad_cam, integrated_gradients, myocardium_concentration
    from lgerisk.inference import RiskPredictor
    from lgerisk.io.cohort import discover_cohort

    predictor = RiskPredictor.load(args.model)
    untrained = RiskPredictor.load(args.model)
    torch.manual_seed(0)
    for module in untrained.model.image_encoder.modules():
        if hasattr(module, "reset_parameters") and not list(module.children()):
            module.reset_parameters()
    untrained.model.image_encoder._init_weights()  # the encoder's own initialisation, as before training
    cases = list(discover_cohort(args.data).cases)[: args.cases]
    ratios: dict[str, list[float]] = {
        "trained gradcam": [],
        "trained ig": [],
        "untrained gradcam": [],
        "untrained ig": [],
    }
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            prepared, _ = predictor.prepare(case, Path(work))
            masks = case_tensor(
                prepared.image,
                prepared.mask,
                TensorSpec(slices=predictor.spec.slices, size=predictor.spec.size, channels=("image", "myocardium")),
            )
            myocardium = masks[1] > 0.5
            for name, model in (("trained", predictor), ("untrained", untrained)):
                image, tabular, _ = model.inputs(prepared, case.covariates)
                ratios[f"{name} gradcam"].append(
                    myocardium_concentration(grad_cam(model.model, image, tabular), myocardium)
                )
                ratios[f"{name} ig"].append(
                    myocardium_concentration(
                        integrated_gradients(model.model, image, tabular, steps=args.steps), myocardium
                    )
                )
    print(f"SYNTHETIC cases: {len(cases)} from {args.data}; model {args.model}")
    print("mean |attribution| per voxel, inside / outside the myocardium: median [IQR]")
    for name, values in ratios.items():
        finite = np.asarray([v for v in values if np.isfinite(v)])
        q1, median, q3 = np.percentile(finite, [25, 50, 75])
        above = float((finite > 1).mean())
        print(f"  {name:<18} {median:6.2f} [{q1:.2f}-{q3:.2f}]  cases with ratio > 1: {above:.0%}")


if __name__ == "__main__":
    main()
