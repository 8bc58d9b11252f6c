"""``loyalty serve``: the API (BentoML service with the lean app mounted, or plain uvicorn)."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer

from loyalty_ml.cli.common import console, friendly_errors


class Engine(StrEnum):
    bentoml = "bentoml"
    uvicorn = "uvicorn"


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @friendly_errors
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 3000,
        workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 2,
        engine: Annotated[
            Engine,
            typer.Option(help="bentoml: the Bento service (default); uvicorn: the app alone."),
        ] = Engine.bentoml,
    ) -> None:
        """Serve /recommend, /churn_score, /benefits, /campaigns, /healthz, /readyz, /metrics.

        In the local profile, API keys are generated once into LOYALTY_HOME/api_keys.json (0600)
        when none are configured. Champions are resolved once here (MLflow aliases, artifacts copied
        under LOYALTY_HOME/serving/champions); each worker loads them from there; /readyz says when they are ready.
        """
        from loyalty_ml.serving.config import load_serving_config
        from loyalty_ml.serving.runner import (
            bentoml_command,
            prepare_champions,
            prepare_keys,
            server_env,
            uvicorn_command,
        )

        config = load_serving_config()
        console.print(prepare_keys(config), highlight=False)
        champions_file, line = prepare_champions()
        console.print(line, highlight=False)
        env = server_env(workers, champions_file)
        if engine is Engine.bentoml:
            command = bentoml_command(host, port)
        else:
            command = uvicorn_command(host, port, workers)
        console.print(
            f"serving on http://{host}:{port} ({engine.value}, {workers} worker(s)); "
            f"docs at /docs, readiness at /readyz",
            highlight=False,
        )
        os.execve(command[0], command, env)
