"""Text: streaming tokenization and vocabularies."""
