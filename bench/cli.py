"""``mayak bench``: the command that proves the speed and memory targets."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        quick: bool = typer.Option(False, "--quick", help="a short run (under 5 minutes)"),
        json_file: Path = typer.Option(None, "--json", help="also write the figures to FILE"),
    ) -> None:
        """Measure every stage against its limit in one run and print the table."""
        from rich.console import Console

        from bench.runner import run_bench

        run_bench(quick, json_file, Console())
