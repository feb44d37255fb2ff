"""Thin Prefect tasks: read inputs, call replearn.lib, write outputs atomically, log to MLflow."""
