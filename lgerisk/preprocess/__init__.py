"""Preprocessing: canonical orientation, in-plane resampling, LV crop, normalisation, scar, QC."""

ALGORITHM_VERSION = 1
"""Bumped whenever preprocessing output changes for the same settings (invalidates resumed results)."""
