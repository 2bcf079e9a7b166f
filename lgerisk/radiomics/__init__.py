"""Radiomics: pyradiomics settings and extraction for the myocardium, scar and grey zone, and stability."""

EXTRACTION_VERSION = 1
"""Bumped whenever extraction output changes for the same parameters (invalidates cached rows)."""
