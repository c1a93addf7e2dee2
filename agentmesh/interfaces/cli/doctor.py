"""`agentmesh doctor`: check the installation, database, Prefect and the model endpoint; say what to fix."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False
               ) -> None:
        """Check that goals can run here; exit 0 when all is well, 1 otherwise (each problem with its fix)."""
        from rich.console import Console

        from agentmesh.core.exceptions import ConfigError
        from agentmesh.core.settings import get_settings
        from agentmesh.interfaces.doctor import Check, run_checks

        try:
            checks = run_checks(get_settings())
        except ConfigError as exc:  # agentmesh.toml or the environment: nothing else can be checked without them
            checks = [Check(name="configuration", ok=False, detail=str(exc),
                            fix="correct the setting named (agentmesh.toml, AGENTMESH_CONFIG or AGENTMESH_* variables)")]
        ok = all(c.ok for c in checks)
        if as_json:
            sys.stdout.write(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=2) + "\n")
        else:
            out = Console(soft_wrap=True, highlight=False)
            for c in checks:
                mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
                out.print(f"{mark} {c.name}: {c.detail}" + (f" — fix: {c.fix}" if c.fix else ""))
        if not ok:
            raise typer.Exit(1)
