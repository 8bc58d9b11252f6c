"""``loyalty ab``: assign members to variants, analyse an A/B test, size the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loyalty_ml.cli.common import console, fail, friendly_errors, out

app = typer.Typer(
    help="A/B tests: deterministic assignment, lift with CIs (CUPED), SRM check, sample size.",
    no_args_is_help=True,
)


def _splits(text: str | None, experiment: str) -> dict[str, float]:
    """``control=0.1,a=0.45,b=0.45``; default: the experiment's splits in config/abtest.yaml."""
    from loyalty_ml.abtest import load_ab_config

    if text:
        pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
        try:
            return {k.strip(): float(v) for k, v in pairs}
        except ValueError:
            fail(f"--splits {text!r}: expected name=weight,name=weight")
    cfg = load_ab_config()
    if experiment not in cfg.experiments:
        fail(f"experiment {experiment!r} not in config/abtest.yaml: pass --splits")
    return dict(cfg.experiments[experiment].splits)


def _read(path: Path):  # type: ignore[no-untyped-def]
    import pandas as pd

    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"member_id": str})


@app.command("assign")
@friendly_errors
def assign(
    experiment: Annotated[str, typer.Argument(help="Experiment name (also the default salt).")],
    members: Annotated[list[str] | None, typer.Argument(help="Member ids.")] = None,
    members_file: Annotated[
        Path | None, typer.Option("--members-file", help="CSV/parquet with member_id.")
    ] = None,
    splits: Annotated[
        str | None, typer.Option("--splits", help="control=0.1,a=0.45,b=0.45 (default: config).")
    ] = None,
    salt: Annotated[str | None, typer.Option("--salt", help="Override the salt.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write a CSV/parquet.")] = None,
) -> None:
    """Print (or write) each member's variant; the same answer on every machine and restart."""
    import pandas as pd

    from loyalty_ml.abtest import assign_variants
    from loyalty_ml.contract.io import write_frame

    ids = list(members or [])
    if members_file is not None:
        ids += _read(members_file)["member_id"].astype(str).tolist()
    if not ids:
        fail("give member ids or --members-file")
    arms = _splits(splits, experiment)
    frame = pd.DataFrame(
        {"member_id": ids, "variant": assign_variants(experiment, ids, arms, salt)}
    )
    if output is not None:
        write_frame(frame, output)
        counts = frame["variant"].value_counts().to_dict()
        console.print(f"wrote {len(frame)} assignments to {output}: {counts}")
        return
    for row in frame.itertuples(index=False):
        typer.echo(f"{row.member_id}\t{row.variant}")


@app.command("analyze")
@friendly_errors
def analyze_cmd(
    exposures: Annotated[Path, typer.Option("--exposures", help="Exposure log (CSV/parquet).")],
    outcomes: Annotated[Path, typer.Option("--outcomes", help="member_id + metric columns.")],
    metric: Annotated[str, typer.Option("--metric", help="Outcome column.")],
    kind: Annotated[str, typer.Option("--kind", help="proportion | mean.")] = "proportion",
    cuped: Annotated[
        str | None, typer.Option("--cuped", help="Pre-period covariate column (e.g. pre_spend).")
    ] = None,
    experiment: Annotated[str | None, typer.Option("--experiment")] = None,
    control: Annotated[str | None, typer.Option("--control")] = None,
    splits: Annotated[
        str | None, typer.Option("--splits", help="Expected split for the SRM check.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the table.")] = None,
) -> None:
    """Lift per variant vs control with CIs and p-values, plus a sample-ratio-mismatch check."""
    from loyalty_ml.abtest import analyze, join_exposures, load_ab_config, read_exposures, srm_check
    from loyalty_ml.contract.io import write_frame

    if kind not in ("proportion", "mean"):
        fail("--kind must be proportion or mean")
    cfg = load_ab_config()
    exp = read_exposures(exposures)
    name = experiment or (exp["experiment"].iloc[0] if exp["experiment"].nunique() == 1 else None)
    frame = join_exposures(exp, _read(outcomes), metric, [cuped] if cuped else None, name)
    table = analyze(
        frame,
        metric,
        kind=kind,  # type: ignore[arg-type]
        cuped_covariate=cuped,
        control=control or cfg.control,
        alpha=cfg.alpha,
    )
    expected = None
    if splits or (name and name in cfg.experiments):
        expected = _splits(splits, str(name))
    srm = srm_check(
        frame["variant"].value_counts(),
        expected or {v: 1.0 for v in frame["variant"].unique()},
        alpha=cfg.srm_alpha,
    )
    shown = Table(title=f"{name or 'experiment'}: {metric} ({kind}{', CUPED' if cuped else ''})")
    for col in ("variant", "n", "mean", "control mean", "diff [CI]", "lift [CI]", "p"):
        shown.add_column(col)
    for r in table.itertuples(index=False):
        shown.add_row(
            r.variant,
            str(r.n),
            f"{r.mean:.4g}",
            f"{r.control_mean:.4g}",
            f"{r.diff:+.4g} [{r.ci_low:+.4g}, {r.ci_high:+.4g}]",
            f"{r.lift:+.1%} [{r.lift_ci_low:+.1%}, {r.lift_ci_high:+.1%}]",
            f"{r.p_value:.3g}",
        )
    out.print(shown)
    verdict = "[bold red]MISMATCH[/] (do not trust the lift)" if srm.mismatch else "ok"
    out.print(f"SRM check: p={srm.p_value:.3g} {verdict}; arms {srm.observed}")
    if output is not None:
        write_frame(table, output)


@app.command("sample-size")
@friendly_errors
def sample_size_cmd(
    baseline: Annotated[float, typer.Option("--baseline", help="Control rate or mean.")],
    mde: Annotated[float, typer.Option("--mde", help="Minimum detectable effect.")],
    kind: Annotated[str, typer.Option("--kind", help="proportion | mean.")] = "proportion",
    sd: Annotated[float | None, typer.Option("--sd", help="Outcome sd (kind=mean).")] = None,
    relative: Annotated[bool, typer.Option("--relative", help="mde is relative.")] = False,
    alpha: Annotated[float | None, typer.Option("--alpha")] = None,
    power: Annotated[float | None, typer.Option("--power")] = None,
    ratio: Annotated[float, typer.Option("--ratio", help="n_treatment / n_control.")] = 1.0,
) -> None:
    """Members per arm needed to detect ``mde`` (two-sided)."""
    from loyalty_ml.abtest import load_ab_config, sample_size

    cfg = load_ab_config()
    n = sample_size(
        baseline,
        mde,
        alpha if alpha is not None else cfg.alpha,
        power if power is not None else cfg.power,
        kind,  # type: ignore[arg-type]
        sd=sd,
        relative=relative,
        ratio=ratio,
    )
    out.print(f"control {n['control']}  treatment {n['treatment']}  total {n['total']}")
