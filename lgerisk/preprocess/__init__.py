"""Preprocessing: canonical orientation, in-plane resampling, LV crop, normalisation, scar, QC."""

ALGORITHM_VERSION = 3
"""2: remote reference excluding enhancement, fwhm the derived default; 3: derived scar's enhancement test,
remote guard, confidence and flags (QC keys). Bumped whenever preprocessing output
changes for the same settings (invalidates resumed results)."""
