"""Metric learning: image data, encoders, pair/triplet mining, contrastive and triplet losses."""
