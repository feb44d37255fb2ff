"""Text: streaming tokenization (entry point :mod:`replearn.lib.text.tokenize`, one module per step) and vocabularies."""
