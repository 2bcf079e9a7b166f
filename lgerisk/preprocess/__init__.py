"""Preprocessing: canonical orientation, in-plane resampling, LV crop, normalisation, scar, QC."""

ALGORITHM_VERSION = 2
"""2: remote reference excluding enhancement, fwhm the derived default. Bumped whenever preprocessing output
changes for the same settings (invalidates resumed results)."""
