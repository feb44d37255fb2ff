"""The science: tokenization, vocabularies, models, losses, metrics, storage. Never imports prefect or mlflow."""
