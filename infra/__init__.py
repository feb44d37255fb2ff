"""Infrastructure shared by tasks and flows: the data home, MLflow tracking, the stage cache, task runners and fan-out."""
