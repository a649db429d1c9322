"""Watching the deployed model: drift, decay and data quality of the prediction log, and retraining data."""
