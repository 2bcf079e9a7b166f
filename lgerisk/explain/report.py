"""A prediction explained in words and as one self-contained HTML page.

``summary_text`` writes a few plain sentences a cardiologist can read, led by what limits them (a scan
outside what the model was trained on; where the scan and the model come from): the risk score and group,
the probability of remaining free of SCD at the model's horizons, the scar burden, the radiomics
features the risk aligns with over the training cohort and where this scan lies on them, warnings,
and that the tool is for research only. A prediction that is not reliable (out of range, or a derived
scar that needs checking) gets no survival figure anywhere in its report, only why (the machine records,
prediction.json and predictions.csv, keep the numbers beside ``reliable`` and ``unreliable_reasons``).
``html_report`` lays it out with the pictures embedded (base64 data URIs) and inline CSS, so the one file
opens offline, can be e-mailed, and references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from lgerisk.errors import InputError
from lgerisk.io.atomic import write_text
from lgerisk.io.provenance import provenance_sentence

if TYPE_CHECKING:
    from _typeshed import ConvertibleToFloat

DISCLAIMER = (
    "For research use only: lgerisk is not a medical device and its risk estimates are not validated "
    "for clinical decisions."
)

RISK_GROUP_MEANING = {"low": "bottom third", "intermediate": "middle third", "high": "top third"}

OUT_OF_RANGE = "out of range"
"""The risk group of a prediction that is not reliable (as in :mod:`lgerisk.predict.run`)."""

_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 1.5em 2em; color: #1d232a; line-height: 1.45; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.4em; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.5em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
.banner { background: #b42318; color: #fff; font-weight: 700; text-align: center; padding: 0.6em;
          letter-spacing: 0.04em; margin: 0 -1.5em; }
.banner + .banner { border-top: 1px solid #fff; }
.summary p { margin: 0.35em 0; }
.warning { color: #9a3412; font-weight: 600; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f5f7; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 0.6em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: 0.85em; color: #57606a; }
.table-wrap { overflow-x: auto; }
footer { margin-top: 2.5em; padding-top: 0.6em; border-top: 1px solid #d0d7de; font-size: 0.85em; color: #57606a; }
"""


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(cast("ConvertibleToFloat", value))  # anything else raises TypeError: caught
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _percent(probability: float) -> str:
    """A probability as a percentage, never rounded up to 100 % or down to 0 %."""
    value = 100.0 * probability
    text = f"{value:.0f}"
    if (text == "100" and value < 100) or (text == "0" and value > 0):
        text = f"{value:.1f}"
    return f"{text} %"


def ordinal(value: float) -> str:
    """``91`` -> ``91st``, ``12`` -> ``12th`` (rounded to a whole number).

    Example:
        >>> ordinal(91.4), ordinal(12), ordinal(2.6), ordinal(73)
        ('91st', '12th', '3rd', '73rd')
    """
    number = round(float(value))
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def survival_curve(prediction: Mapping[str, object]) -> list[tuple[float, float]]:
    """(years, probability of remaining free of SCD) from a prediction record's ``survival_<years>`` fields,
    by years (fields without a number left out).

    Example:
        >>> survival_curve({"risk_score": 0.8, "survival_5": 0.85, "survival_1": 0.99, "survival_3": None})
        [(1.0, 0.99), (5.0, 0.85)]
    """
    pairs = []
    for key, probability in prediction.items():
        if not (isinstance(key, str) and key.startswith("survival_")):
            continue
        years, value = _number(key[len("survival_") :]), _number(probability)
        if years is not None and value is not None:
            pairs.append((years, value))
    return sorted(pairs)


def _risk_sentence(prediction: Mapping[str, object]) -> str | None:
    score = _number(prediction.get("risk_score"))
    group = prediction.get("risk_group")
    if score is None and not group:
        return None
    parts = [f"Risk score {score:.2f}" if score is not None else "Risk score not available"]
    if str(group).lower() == OUT_OF_RANGE:
        parts.append(" (no risk group: the scan is out of the model's range)")
    elif group:
        meaning = RISK_GROUP_MEANING.get(str(group).lower())
        parts.append(
            f" ({group} risk group: {meaning} of the training cohort)" if meaning else f" (risk group {group})"
        )
    return "".join(parts) + "."


def _concept_sentence(alignment: pd.DataFrame, percentiles: pd.Series, top: int) -> str | None:
    from lgerisk.evaluation.concepts import short_feature_name

    if alignment is None or len(alignment) == 0 or "r_risk" not in alignment or top < 1:
        return None
    ranked = alignment.loc[alignment["r_risk"].abs().sort_values(ascending=False, kind="stable").index]
    items = []
    for _, row in ranked.head(top).iterrows():
        r = _number(row["r_risk"])
        if r is None:
            continue
        name = short_feature_name(row["feature"], width=60)
        text = f"{name} (r = {r:.2f}"
        if r < 0:
            text += ", higher values go with lower risk"
        known = percentiles is not None and row["feature"] in percentiles.index
        percentile = _number(percentiles[row["feature"]]) if known else None
        if percentile is not None:
            text += f"; this scan: {ordinal(percentile)} percentile)"
        else:
            text += "; not measured in this scan)" if known else ")"
        items.append(text)
    if not items:
        return None
    n_cases = alignment.attrs.get("n_cases")
    cohort = f"the training cohort ({n_cases} cases)" if n_cases else "the training cohort"
    if len(items) == 1:
        return f"Over {cohort}, the model's risk agrees most with {items[0]}."
    return f"Over {cohort}, the model's risk agrees most with " + "; ".join(items[:-1]) + f"; and {items[-1]}."


def provenance_of(prediction: Mapping[str, object]) -> tuple[bool, bool]:
    """(scan synthetic, model trained on synthetic data) of a prediction record; a bare ``synthetic``
    (older records) stands for both.

    Example:
        >>> provenance_of({"scan_synthetic": False, "model_trained_on_synthetic": True})
        (False, True)
    """
    legacy = bool(prediction.get("synthetic"))
    scan = prediction.get("scan_synthetic")
    model = prediction.get("model_trained_on_synthetic")
    return (legacy if scan is None else bool(scan)), (legacy if model is None else bool(model))


def out_of_range_sentence(reasons: Iterable[object] | None) -> str:
    """What a prediction flagged ``reliable=false`` means, with its reasons.

    Example:
        >>> out_of_range_sentence(["slice spacing 15 mm is outside the training range 8-13 mm"])[:60]
        'OUT OF RANGE: this scan lies outside what the model was trai'
    """
    listed = [str(r).rstrip(".") for r in (reasons or []) if str(r).strip()]
    because = f" ({'; '.join(listed)})" if listed else ""
    return (
        f"OUT OF RANGE: this scan lies outside what the model was trained on{because}. The risk score is "
        "shown, but no risk group is given and no number here is reliable for this scan."
    )


def scar_check_sentence(reasons: Iterable[object] | None) -> str:
    """What a prediction made unreliable by a low-confidence derived scar means.

    Example:
        >>> scar_check_sentence(["the derived scar needs checking (fwhm, scar_confidence low: remote_uncertain)"])[:40]
        'CHECK THE SCAR: the scar of this scan wa'
    """
    listed = "; ".join(str(r).rstrip(".") for r in (reasons or []) if str(r).strip())
    return (
        f"CHECK THE SCAR: the scar of this scan was derived from the image with low confidence ({listed}). The "
        "model reads that scar, so no risk group is given until a reader has checked it."
    )


def survival_withheld(prediction: Mapping[str, object]) -> str | None:
    """Why a report gives no survival figure for ``prediction`` (None: it gives them): the scan is out of the
    model's range, or its derived scar needs checking.

    Example:
        >>> survival_withheld({"reliable": False, "unreliable_reasons": ["slice spacing 15 mm is outside ..."]})
        "not given: the scan is out of the model's range"
        >>> survival_withheld({"reliable": True}) is None
        True
    """
    if prediction.get("reliable") is not False:
        return None
    from lgerisk.preprocess.scar import SCAR_CHECK_REASON

    listed = cast("Iterable[object]", prediction.get("unreliable_reasons") or [])  # a list of sentences
    reasons = [str(r) for r in listed]
    scar = [r for r in reasons if r.startswith(SCAR_CHECK_REASON)]
    why = []
    if len(scar) < len(reasons) or not reasons:
        why.append("the scan is out of the model's range")
    if scar:
        why.append("its derived scar needs checking")
    return "not given: " + " and ".join(why)


def is_survival_field(name: object) -> bool:
    """Whether a record's field holds a survival probability (``survival_<horizon>``).

    Example:
        >>> is_survival_field("survival_5"), is_survival_field("survival_x"), is_survival_field("scar_percent")
        (True, False, False)
    """
    text = str(name)
    return text.startswith("survival_") and _number(text[len("survival_") :]) is not None


def withhold_survival(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a predictions table for a page: in the rows whose ``reliable`` is false the survival columns
    read why they are empty instead of a number (:func:`survival_withheld`); the rest unchanged.

    Example:
        >>> table = pd.DataFrame({"reliable": [True, False], "survival_5": [0.9, 1e-06]})
        >>> withhold_survival(table)["survival_5"].tolist()
        [0.9, "not given: the scan is out of the model's range"]
    """
    shown = table.copy()
    columns = [c for c in shown.columns if is_survival_field(c)]
    if not columns or "reliable" not in shown.columns:
        return shown
    for index, row in shown.iterrows():
        reason = survival_withheld(
            {"reliable": _flag(row["reliable"]), "unreliable_reasons": _reasons(row.get("unreliable_reasons"))}
        )
        if reason is not None:
            shown[columns] = shown[columns].astype(object)
            shown.loc[index, columns] = reason
    return shown


def _flag(value: object) -> bool | None:
    """A ``reliable`` value as read back from a table (bool, or the strings CSV writes)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    return {"true": True, "false": False}.get(text)


def _reasons(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str) and value.strip():
        return [part.strip() for part in value.split("; ")]
    return []


def sanity_sentence(check: Mapping[str, object] | None) -> str:
    """The attribution sanity check (:func:`lgerisk.explain.run.attribution_sanity`) in one sentence.

    Example:
        >>> check = {"status": "run", "case_id": "A1", "threshold": 0.5, "seeds": [1, 2],
        ...          "gradcam": {"status": "passed", "spearman": 0.12},
        ...          "integrated_gradients": {"status": "failed", "spearman": 0.81}}
        >>> print(sanity_sentence(check))  # doctest: +NORMALIZE_WHITESPACE
        Attribution sanity check (model-parameter randomisation, Adebayo et al. 2018: the image encoder's weights
        replaced by random ones, 2 seeds, on scan A1): Grad-CAM passed, Spearman 0.12 between the trained and the
        randomised model; integrated gradients FAILED, Spearman 0.81 — its map hardly changes when the weights are
        random, so it shows the scan and the architecture more than what the model learnt.
    """
    if not check or check.get("status") != "run":
        reason = (check or {}).get("reason") or "not asked for"
        return f"Attribution sanity check not run ({str(reason).rstrip('.')})."
    threshold = _number(check.get("threshold"))
    parts: list[str] = []
    for name, key in (("Grad-CAM", "gradcam"), ("integrated gradients", "integrated_gradients")):
        result = cast("Mapping[str, object]", check.get(key) or {})  # the method's own record
        rho = _number(result.get("spearman"))
        status = result.get("status")
        if status == "passed" and rho is not None:
            between = " between the trained and the randomised model" if not parts else ""
            parts.append(f"{name} passed, Spearman {rho:.2f}{between}")
        elif status == "failed" and rho is not None:
            limit = f" (|rho| >= {threshold:g})" if threshold is not None and not parts else ""
            parts.append(
                f"{name} FAILED, Spearman {rho:.2f}{limit} — its map hardly changes when the weights are random, "
                "so it shows the scan and the architecture more than what the model learnt"
            )
        else:
            parts.append(f"{name} not measurable (a map is constant)")
    seeds = cast("Sequence[int]", check.get("seeds") or [])
    return (
        "Attribution sanity check (model-parameter randomisation, Adebayo et al. 2018: the image encoder's weights "
        f"replaced by random ones, {len(seeds)} seed{'' if len(seeds) == 1 else 's'}, on scan {check.get('case_id')}): "
        + "; ".join(parts)
        + "."
    )


def notices(prediction: Mapping[str, object]) -> list[str]:
    """The sentences that must lead any report of ``prediction``: out of range first, then where the scan
    and the model come from (true for that pair)."""
    lines = []
    if prediction.get("reliable") is False:
        from lgerisk.preprocess.scar import SCAR_CHECK_REASON

        listed = cast("Iterable[object]", prediction.get("unreliable_reasons") or [])  # a list of sentences
        reasons = [str(r) for r in listed]
        scar = [r for r in reasons if r.startswith(SCAR_CHECK_REASON)]
        outside = [r for r in reasons if r not in scar]
        if outside or not scar:
            lines.append(out_of_range_sentence(outside))
        if scar:
            lines.append(scar_check_sentence(scar))
    sentence = provenance_sentence(*provenance_of(prediction))
    if sentence is not None:
        lines.append(sentence)
    return lines


def summary_text(
    prediction: Mapping[str, object],
    alignment: pd.DataFrame,
    percentiles: pd.Series,
    top: int = 3,
    notes: Sequence[str] = (),
) -> str:
    r"""A few plain sentences about one prediction, one paragraph per line.

    ``prediction`` is the record ``predict`` writes (a ``Prediction``'s ``values``): ``case_id``, ``risk_score``,
    ``risk_group``, ``survival_<years>`` (probability of remaining free of SCD), ``scar_percent``, ``greyzone_percent``,
    ``myocardium_mass_g``, ``warnings``, ``scan_synthetic``, ``model_trained_on_synthetic``, ``reliable``
    and ``unreliable_reasons`` (:mod:`lgerisk.predict.run`'s record; a bare ``synthetic`` stands for
    both provenance flags); missing entries are left out. The text leads with :func:`notices`.
    ``alignment`` is :func:`lgerisk.evaluation.concepts.concept_alignment` over the training cohort and
    ``percentiles`` the scan's :func:`lgerisk.evaluation.concepts.case_percentiles`; the ``top``
    features by ``|r|`` are named; ``notes`` (e.g. the attribution sanity check) are lines of their own
    before the disclaimer. A prediction that is not reliable gets no survival figure, only why
    (:func:`survival_withheld`).

    Example:
        >>> prediction = {"case_id": "A1", "risk_score": 0.84, "risk_group": "high", "survival_3": 0.91,
        ...               "scar_percent": 14.6, "greyzone_percent": 5.2, "warnings": [], "scan_synthetic": False,
        ...               "model_trained_on_synthetic": False, "reliable": True}
        >>> text = summary_text(prediction, pd.DataFrame(), pd.Series(dtype=float))
        >>> print(text.splitlines()[0].replace(". ", ".\n"))
        Case A1.
        Risk score 0.84 (high risk group: top third of the training cohort).
        Estimated probability of remaining free of SCD: 91 % at 3 years.
        Scar 14.6 % of LV myocardium, grey zone 5.2 %.
    """
    if not isinstance(prediction, Mapping):
        raise InputError(f"prediction must be a dict, not {type(prediction).__name__}.")
    lines = notices(prediction)
    sentences = []
    if prediction.get("case_id") not in (None, ""):
        sentences.append(f"Case {prediction['case_id']}.")
    risk = _risk_sentence(prediction)
    if risk:
        sentences.append(risk)
    horizons = survival_curve(prediction)
    withheld = survival_withheld(prediction)
    if withheld is not None:
        sentences.append(
            "No probability of remaining free of SCD is given: "
            + withheld.removeprefix("not given: ")
            + ", so the model's survival estimate would not hold for it."
        )
    elif horizons:
        parts = [f"{_percent(p)} at {years:g} year{'' if years == 1 else 's'}" for years, p in horizons]
        sentences.append("Estimated probability of remaining free of SCD: " + ", ".join(parts) + ".")
    scar, grey = _number(prediction.get("scar_percent")), _number(prediction.get("greyzone_percent"))
    burden = []
    if scar is not None:
        burden.append(f"Scar {scar:.1f} % of LV myocardium")
    if grey is not None:
        burden.append(f"grey zone {grey:.1f} %" if burden else f"Grey zone {grey:.1f} % of LV myocardium")
    mass = _number(prediction.get("myocardium_mass_g"))
    if burden:
        sentences.append(", ".join(burden) + (f" (LV myocardial mass {mass:.0f} g)." if mass is not None else "."))
    elif mass is not None:
        sentences.append(f"LV myocardial mass {mass:.0f} g.")
    if sentences:
        lines.append(" ".join(sentences))
    concepts = _concept_sentence(alignment, percentiles, top)
    if concepts:
        lines.append(concepts + " These are associations over the cohort, not the model's reasoning.")
    listed = cast("Iterable[object]", prediction.get("warnings") or [])  # a list of sentences
    warnings = [str(w) for w in listed if str(w).strip()]
    if warnings:
        lines.append("Warnings: " + "; ".join(w.rstrip(".") for w in warnings) + ".")
    lines.extend(str(note) for note in notes if str(note).strip())
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def _data_uri(path: Path, name: str) -> str:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"report image {name!r}: {path} does not exist.")
    data = path.read_bytes()
    for signature, mime in _IMAGE_TYPES:
        if data.startswith(signature):
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    raise InputError(f"report image {name!r}: {path} is not a PNG or JPEG file.")


def _format_value(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if not math.isfinite(float(value)) else f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {_format_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(_format_value(item) for item in value) if value else "none"
    return str(value)


def _prediction_table(prediction: Mapping[str, object]) -> str:
    rows = []
    withheld = survival_withheld(prediction)
    for key, value in prediction.items():
        if withheld is not None and is_survival_field(key):
            rows.append((str(key).replace("_", " "), withheld))
            continue
        rows.append((str(key).replace("_", " "), _format_value(value)))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="prediction">{body}</table>'


def _frame_html(frame: pd.DataFrame) -> str:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"report tables must be pandas DataFrames, not {type(frame).__name__}.")
    return str(frame.to_html(escape=True, index=False, border=0, na_rep="–", float_format=lambda x: f"{x:.3g}"))


def html_report(
    path: str | os.PathLike[str],
    title: str,
    summary: str,
    prediction: Mapping[str, object],
    images: Mapping[str, str | os.PathLike[str]],
    tables: Mapping[str, pd.DataFrame],
    synthetic: bool = False,
    banners: list[str] | None = None,
) -> Path:
    """Write one self-contained HTML report (images inline as data URIs, inline CSS); returns its path.

    ``images`` maps a caption to a PNG (or JPEG) file, ``tables`` a heading to a DataFrame
    (numbers shown to 3 significant digits). Every text is HTML-escaped. Banners head the page:
    ``banners`` when given, else :func:`notices` of ``prediction`` (out of range first, then where the
    scan and the model come from). ``synthetic`` (or a synthetic scan in ``prediction``): the data shown
    are synthetic; the title says so, and a ``SYNTHETIC data`` banner is added when no banner says it.

    Example:
        >>> html_report("report.html", "Case A1", "Risk score 0.84.", {"case_id": "A1"}, {}, {})  # doctest: +SKIP
        PosixPath('report.html')
    """
    from lgerisk.version import __version__

    if not isinstance(prediction, Mapping):
        raise InputError(f"prediction must be a dict, not {type(prediction).__name__}.")
    scan_synthetic, _ = provenance_of(prediction)
    synthetic = bool(synthetic or scan_synthetic)
    shown = list(notices(prediction) if banners is None else banners)
    if synthetic and not any("SYNTHETIC" in banner for banner in shown):
        shown.append("SYNTHETIC data — generated cases, not patients; no number on this page describes a real person.")
    heading = f"SYNTHETIC — {title}" if synthetic and "SYNTHETIC" not in title else title
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(heading)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
    ]
    parts.extend(f'<div class="banner">{html.escape(banner)}</div>' for banner in shown)
    parts.append(f"<h1>{html.escape(heading)}</h1>")
    parts.append('<section class="summary">')
    for line in str(summary).splitlines():
        if line.strip() and line.strip() not in shown:  # a banner above says it already
            css = ' class="warning"' if line.startswith("Warnings:") else ""
            parts.append(f"<p{css}>{html.escape(line)}</p>")
    parts.append("</section>")
    parts.append("<h2>Prediction</h2>")
    parts.append(_prediction_table(prediction))
    for caption, image_path in images.items():
        uri = _data_uri(Path(image_path), str(caption))
        parts.append(f"<h2>{html.escape(str(caption))}</h2>")
        parts.append(
            f'<figure><img src="{uri}" alt="{html.escape(str(caption), quote=True)}">'
            f"<figcaption>{html.escape(str(caption))}</figcaption></figure>"
        )
    for heading_text, frame in tables.items():
        parts.append(f"<h2>{html.escape(str(heading_text))}</h2>")
        parts.append(f'<div class="table-wrap">{_frame_html(frame)}</div>')
    parts.append(
        f"<footer>{html.escape(DISCLAIMER)} Generated by lgerisk {html.escape(__version__)}."
        + (" Synthetic data." if synthetic else "")
        + "</footer>"
    )
    parts.append("</body>")
    parts.append("</html>")
    final = Path(path)
    write_text(final, "\n".join(parts) + "\n")
    return final
