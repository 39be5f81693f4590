"""Measuring the models: metrics, plots and the report."""
