"""``loyalty benefits``: batch benefit assignment with the registered (or a local) matcher."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, OutOpt, console, friendly_errors, out

app = typer.Typer(
    help="Assign benefits (uplift net of cost, tier rules, budget).", no_args_is_help=True
)


@app.command("assign")
@friendly_errors
def assign(
    data: DataOpt,
    out_file: OutOpt,
    as_of: AsOfOpt = None,
    all_members: Annotated[
        bool, typer.Option("--all", help="Every member known at --as-of.")
    ] = False,
    members: Annotated[
        Path | None,
        typer.Option(
            "--members", help="File with member ids (one per line, or a member_id column)."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", help="Total benefit cost allowed (policy allocator)."),
    ] = None,
    objective: Annotated[
        str, typer.Option("--objective", help="conversion | revenue | margin | auto (the model's).")
    ] = "auto",
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model URI or local artifact (default models:/benefits-<data>@champion).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Registered model name.")] = None,
) -> None:
    """Write member_id, benefit_id, expected_uplift, expected_net_value, cost (and propensity)."""
    import pandas as pd

    from loyalty_ml.benefits.assign import assign_benefits
    from loyalty_ml.benefits.matcher import BenefitMatcher
    from loyalty_ml.contract.io import write_frame
    from loyalty_ml.contract.validate import load_valid_dataset
    from loyalty_ml.errors import LoyaltyError
    from loyalty_ml.tracking import champion_uri, registered_model_name

    if all_members == (members is not None):
        raise LoyaltyError("give exactly one of --all or --members FILE")
    if objective not in ("auto", "conversion", "revenue", "margin"):
        raise LoyaltyError(f"--objective must be conversion, revenue, margin or auto: {objective}")
    dataset = load_valid_dataset(data)
    uri = model or champion_uri(registered_model_name("benefits", dataset.name, name))
    matcher = BenefitMatcher.load(uri)
    ids = None
    if members is not None:
        if not members.is_file():
            raise LoyaltyError(f"--members file not found: {members}")
        if members.suffix in (".csv", ".parquet"):
            frame = (
                pd.read_parquet(members)
                if members.suffix == ".parquet"
                else pd.read_csv(members, dtype=str)
            )
            col = "member_id" if "member_id" in frame else frame.columns[0]
            ids = frame[col].astype(str).tolist()
        else:
            ids = [line.strip() for line in members.read_text().splitlines() if line.strip()]
    chosen = objective if objective != "auto" else matcher.objective
    console.print(f"objective {chosen} (model trained for {matcher.objective}); model {uri}")
    result = assign_benefits(dataset, matcher, as_of, ids, budget, objective)  # type: ignore[arg-type]
    path = write_frame(result, out_file)
    given = result[result["benefit_id"] != matcher.arms[0]]
    out.print(
        f"{len(result)} members: {len(given)} get a benefit, total cost {given['cost'].sum():.2f}"
        + (f" (budget {budget:g})" if budget is not None else "")
        + f", expected net value {result['expected_net_value'].sum():.2f}; wrote {path}"
    )
    counts = result["benefit_id"].value_counts()
    out.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
