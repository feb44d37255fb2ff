"""Storage: the embeddings table (Parquet), FAISS indexes, atomic writes."""
