"""``loyalty recommend``: batch top-K lists with the same policy filters as the service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loyalty_ml.cli.common import AsOfOpt, DataOpt, OutOpt, console, fail, friendly_errors, out


def _read_members(path: Path) -> list[str]:
    import pandas as pd

    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str)
    else:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    column = "member_id" if "member_id" in frame.columns else frame.columns[0]
    return frame[column].astype(str).tolist()


def register(app: typer.Typer) -> None:
    @app.command("recommend")
    @friendly_errors
    def recommend_cmd(
        data: DataOpt,
        output: OutOpt,
        as_of: AsOfOpt = None,
        all_members: Annotated[
            bool, typer.Option("--all", help="Every member in the data.")
        ] = False,
        members: Annotated[
            Path | None, typer.Option("--members", help="File of member ids (.csv/.parquet/.txt).")
        ] = None,
        n: Annotated[int, typer.Option("--n", min=1, help="Items per member.")] = 10,
        context: Annotated[
            str,
            typer.Option("--context", help="home | post_purchase (cart/similar need a request)."),
        ] = "home",
        model: Annotated[
            str | None,
            typer.Option(
                "--model", help="Bundle dir or MLflow URI (default: champion recs-<data>)."
            ),
        ] = None,
        include_purchased: Annotated[
            bool, typer.Option("--include-purchased", help="Allow items the member already bought.")
        ] = False,
    ) -> None:
        """Write member_id, rank, product_id, score for --all members or those in --members."""
        from loyalty_ml.contract import load_valid_dataset, write_frame
        from loyalty_ml.recs.serving import Recommender
        from loyalty_ml.timeutil import to_utc
        from loyalty_ml.tracking import champion_uri, registered_model_name

        if all_members == (members is not None):
            fail("give exactly one of --all or --members FILE")
        if context not in ("home", "post_purchase"):
            fail("batch --context must be home or post_purchase")
        dataset = load_valid_dataset(data)
        cutoff = to_utc(as_of) if as_of else dataset.latest_timestamp()
        uri = model or champion_uri(registered_model_name("recs", dataset.name))
        rec = Recommender.load(uri)
        rec = rec.with_members(dataset.as_of(cutoff), cutoff)
        ids = (
            sorted(dataset.as_of(cutoff).members["member_id"].astype(str).unique().tolist())
            if all_members
            else _read_members(members)  # type: ignore[arg-type]
        )
        with console.status(f"recommending for {len(ids)} member(s)…"):
            frame = rec.recommend_batch(
                ids, n, context, include_purchased=True if include_purchased else None, now=cutoff
            )
        write_frame(frame, output)
        out.print(
            f"wrote {len(frame)} rows for {frame['member_id'].nunique()} member(s) to {output}"
        )
