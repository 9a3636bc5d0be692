"""``mayak bench``: the command that proves the speed and memory targets."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        quick: bool = typer.Option(False, "--quick", help="a short run (under 5 minutes)"),
        json_file: Path = typer.Option(None, "--json", help="also write the figures to FILE"),
        only: str = typer.Option(
            "",
            "--only",
            help=(
                "one benchmark alone: product (the product page's calls, p95 of each), "
                "stack (CPU per event and memory of broker + worker + collector), "
                "framed (one worker on the collector's frames), "
                "collector (beacons/s and p99 against a bare kafka-python loop); "
                "--quick: short sizes"
            ),
        ),
        events: int = typer.Option(
            10_000_000, "--events", min=1000, help="with --only product: events in the warehouse"
        ),
        rounds: int = typer.Option(
            5, "--rounds", min=1, help="with --only product: timed rounds of every call"
        ),
        data: Path = typer.Option(
            None,
            "--data",
            help="with --only product: keep the generated database in DIR and reuse it next time",
        ),
    ) -> None:
        """Measure every stage against its limit in one run and print the table."""
        from rich.console import Console

        from bench.runner import ONLY, run_bench, run_only, run_product

        if only and only not in ONLY:
            raise typer.BadParameter(f"--only takes {', '.join(ONLY)}, got {only!r}")
        if only == "product":
            run_product(events, rounds, data, json_file, Console())
        elif only:
            run_only(only, quick, json_file, Console())
        else:
            run_bench(quick, json_file, Console())
