"""Evaluation metrics for embeddings."""
