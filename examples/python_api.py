"""lgerisk from Python, the way a notebook uses it: preprocess -> radiomics -> pretrain -> finetune -> predict
-> explain, with the public API only (``import lgerisk``).

    python examples/python_api.py                          # sample_data, small settings (a few minutes on 2 cores)
    python examples/python_api.py --data my_cohort --work work/

Every number it prints on sample_data is SYNTHETIC (the cohort comes from lgerisk's own generator).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lgerisk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "sample_data")
    parser.add_argument("--work", type=Path, default=Path("work/python-api"))
    parser.add_argument("--epochs", type=int, default=2, help="pretraining epochs")
    parser.add_argument("--quick", action="store_true", help="tiny network and input (seconds; for the tests)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for preprocessing and radiomics")
    args = parser.parse_args()
    size = {"width": 4, "embedding_dim": 16, "tensor": {"slices": 4, "size": 32}} if args.quick else {}

    # 1. the cohort, and one scan's QC numbers
    cohort = lgerisk.read_cohort(args.data)
    print(f"{len(cohort.cases)} cases ({cohort.layout})")
    first = cohort.cases[0]
    qc = lgerisk.preprocess_case(first.image, first.mask)
    print(
        f"{qc.case_id}: scar {qc.scar_percent:.1f} % ({qc.scar_method}), grey zone {qc.greyzone_percent:.1f} %, "
        f"LV mass {qc.myocardium_mass_g:.0f} g" + (" [SYNTHETIC]" if qc.synthetic else "")
    )

    # 2. the whole cohort: preprocessing and radiomics (both resume when rerun)
    prep = lgerisk.preprocess_cohort(args.data, args.work / "prep", jobs=args.jobs)
    print(f"preprocessed {len(prep.table)} cases, {len(prep.errors)} failed")
    features = lgerisk.extract_features(prep.out, args.work / "features.csv", jobs=args.jobs)
    print(f"radiomics: {features.table.shape[1]} columns")

    # 3. radiomics-guided pretraining (no outcomes), then the survival model on the same folds as the baselines
    encoder = lgerisk.pretrain(
        prep.out, args.work / "pretrain", lgerisk.PretrainConfig(epochs=args.epochs, **size), features=features.out
    )
    print(f"pretrained {encoder.epochs} epoch(s) on {encoder.train_cases} cases")
    risk = lgerisk.finetune(
        prep.out,
        args.work / "risk",
        lgerisk.FinetuneConfig(folds=3, epochs=1, n_boot=50, **size),
        encoder=encoder.run,
        features=features.out,
    )
    table = risk.table.set_index("method")
    print(("SYNTHETIC " if risk.synthetic else "") + f"cross-validated Harrell's C ({risk.cases} cases):")
    print(table[["harrell_c", "harrell_c_low", "harrell_c_high", "delta_c"]].round(3).to_string())

    # 4. predictions for new scans, one or a cohort at once, and an explanation in radiomics terms
    model = lgerisk.load_model(risk.run)
    one = lgerisk.predict_scan(model, first.image, first.mask)
    print(f"{one.case_id}: risk {one.risk_score:+.2f} ({one.risk_group}), reliable {one.reliable}")
    predictions = lgerisk.predict_cohort(model, args.data, out=args.work / "predictions.csv")
    print(predictions.table[["case_id", "risk_score", "risk_group", "scar_percent"]].head().to_string(index=False))
    print(f"{len(predictions.errors)} scan(s) could not be predicted")
    explanation = lgerisk.explain_scan(model, first.image, args.work / "explain", first.mask)
    print(f"explained {explanation.prediction.case_id}: {explanation.out / 'report.html'}")
    print(explanation.features[["feature", "this_scan", "percentile"]].head(3).to_string(index=False))


if __name__ == "__main__":
    main()
