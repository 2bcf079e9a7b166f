"""The synthetic cohort's outcome model, measured: event rate and oracle C-indices (SYNTHETIC).

    python benchmarks/synthetic_outcomes.py [--cases 400] [--seeds 0] [--hazard-version 2]

Draws the ground truth and outcomes of ``--cases`` cases per seed without rendering images
(``generate_truth``) and prints the event rate and Harrell's C of the true log-hazard, of its image
part and of its clinical part against the observed outcomes, under ``--hazard-version`` (default: the
generator's default, 2;
1 reproduces generator 1.0's figures). The expected C over many outcome redraws, against scar %:
benchmarks/headroom.py.
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--hazard-version", type=int, default=None, help="hazard version (default: the generator's default)"
    )
    args = parser.parse_args()
    import pandas as pd
    from lifelines.utils import concordance_index

    from lgerisk.synth import DEFAULT_HAZARD_VERSION, SynthConfig, generate_truth

    version = args.hazard_version or DEFAULT_HAZARD_VERSION
    print(f"hazard version {version}")
    print(
        f"{'seed':>4} {'cases':>5} {'events':>7} {'oracle C':>8} {'image part C':>12} {'clinical part C':>15}"
        "  (SYNTHETIC)"
    )
    for seed in args.seeds:
        config = SynthConfig(n_cases=args.cases, seed=seed, hazard_version=version)
        rows = []
        for index in range(args.cases):
            truth, _, outcome = generate_truth(index, config)
            rows.append({**truth, **outcome})
        table = pd.DataFrame(rows)

        def c_index(score: str, table: pd.DataFrame = table) -> float:
            return concordance_index(table["time"], -table[score], table["event"])

        print(
            f"{seed:>4} {args.cases:>5} {table['event'].mean():7.1%} {c_index('log_hazard'):8.3f} "
            f"{c_index('lp_image'):12.3f} {c_index('lp_clinical'):15.3f}"
        )


if __name__ == "__main__":
    main()
