"""Explanations of a risk prediction: image attributions, radiomics concept alignment, and reports."""
