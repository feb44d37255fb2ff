"""The command line (typer): one module per family; it calls flows and the serving API only."""
