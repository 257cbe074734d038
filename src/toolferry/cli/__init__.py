"""The command-line interface: `toolferry` (Typer + Rich) and the TES HTTP client it uses."""
