"""Datasets: one TextDataset shape from the registry, GLUE files or a user's CSV; splits; tokenising and batching."""
