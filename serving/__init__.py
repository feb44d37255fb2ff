"""Serving: the MLflow pyfunc models that answer queries, and registry lookups."""
