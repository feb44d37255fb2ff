"""Prefect flows and the replearn CLI."""
