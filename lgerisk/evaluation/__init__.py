"""Evaluation of survival models: discrimination and calibration metrics, cross-validation splits."""
