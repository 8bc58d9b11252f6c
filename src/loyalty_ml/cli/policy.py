"""``loyalty policy``: inspect the programme rules and what they mean for one member."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from loyalty_ml.cli.common import DataOpt, OutOpt, console, friendly_errors, out

app = typer.Typer(
    help="Loyalty programme rules: tiers, points, benefits, contact caps.", no_args_is_help=True
)

DateOpt = Annotated[
    str | None,
    typer.Option(
        "--date",
        "--as-of",
        help="Decision instant (inclusive, UTC; a date means 00:00). Default: latest in the data.",
    ),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy YAML (default: LOYALTY_POLICY_FILE or config/)."),
]


def _load(data: Path, policy: Path | None):  # type: ignore[no-untyped-def]
    from loyalty_ml.contract.validate import load_valid_dataset
    from loyalty_ml.policy import load_policy

    dataset = load_valid_dataset(data)
    cfg, warnings = load_policy(policy).with_offer_log_benefits(dataset.offers)
    for message in warnings:
        console.print(f"[yellow]warning:[/] {message}", highlight=False)
    return dataset, cfg


@app.command("explain")
@friendly_errors
def explain(
    member_id: Annotated[str, typer.Argument(help="Member id.")],
    data: DataOpt,
    date: DateOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """A member's tier, points, expiring points, eligible benefits and why others are not."""
    from loyalty_ml.policy import eligibility, member_state
    from loyalty_ml.timeutil import to_utc

    dataset, cfg = _load(data, policy)
    at = to_utc(date) if date else dataset.latest_timestamp()
    state = member_state(dataset, member_id, at, cfg)

    def fmt_ts(value: object) -> str:
        import pandas as pd

        return "-" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M}"

    out.print(f"[bold]member {member_id}[/] at {at:%Y-%m-%d %H:%M} UTC", highlight=False)
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="dim")
    summary.add_column()
    tier = str(state["tier"])
    if state["benefit_tier"] != tier:
        tier += f" (benefits of {state['benefit_tier']} until {fmt_ts(state['transition_until'])})"
    summary.add_row("tier", tier)
    nxt = state["next_tier"]
    summary.add_row(
        "growth value",
        f"{state['growth_value']:.1f} (12-month spend {state['spend_12m']:.2f}, "
        f"behaviour {state['behaviour_score']:.1f})",
    )
    if nxt is not None:
        summary.add_row(
            "next tier",
            f"{nxt}: {state['distance_to_next_tier']:.1f} growth to go "
            f"(≈ {state['spend_to_next_tier']:.2f} of spend)",
        )
    balance = int(state["points_balance"])
    summary.add_row("points", f"{balance} (worth {cfg.points_value(balance):.2f} {cfg.currency})")
    summary.add_row(
        "expiring",
        f"{int(state['points_expiring_30d'])} in the next {cfg.points.expiring_soon_days} days",
    )
    if state["downgrade_warning"]:
        summary.add_row(
            "downgrade warning",
            f"yes: reach the {tier} threshold by {fmt_ts(state['grace_ends_at'])} to keep it",
        )
    else:
        summary.add_row(
            "downgrade warning", f"no ({int(state['months_below_threshold'])} month(s) below)"
        )
    out.print(summary)

    table = Table(title="benefits", title_justify="left")
    table.add_column("benefit")
    table.add_column("kind")
    table.add_column("eligible")
    table.add_column("why not")
    for bid, benefit in cfg.benefits.items():
        decision = eligibility(state, bid, at, cfg)
        table.add_row(
            bid,
            benefit.kind,
            "[green]yes[/]" if decision.allowed else "[red]no[/]",
            "" if decision.allowed else f"{decision.reason}: {decision.detail or ''}".rstrip(": "),
        )
    out.print(table)


@app.command("replay")
@friendly_errors
def replay_cmd(
    data: DataOpt,
    out_path: OutOpt,
    date: DateOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Every member's loyalty state (tier, growth, points, warnings) at one instant, to a file."""
    from loyalty_ml.contract.io import write_frame
    from loyalty_ml.policy import replay

    dataset, cfg = _load(data, policy)
    frame = replay(dataset, cfg, as_of=date)
    path = write_frame(frame, out_path)
    counts = frame["tier"].value_counts()
    tiers = ", ".join(f"{t} {int(counts.get(t, 0))}" for t in cfg.tier_names)
    out.print(f"wrote {len(frame)} member states to {path} ({tiers})", highlight=False)


@app.command("show")
@friendly_errors
def show(policy: PolicyOpt = None) -> None:
    """The programme rules in force (validates the policy file)."""
    from loyalty_ml.policy import load_policy

    cfg = load_policy(policy)
    tiers = Table(title="tiers", title_justify="left")
    for col in ("tier", "growth threshold", "points multiplier"):
        tiers.add_column(col)
    for level in cfg.tiers.levels:
        tiers.add_row(
            level.name, f"{level.threshold:g}", f"{cfg.points.tier_multipliers[level.name]:g}x"
        )
    out.print(tiers)
    benefits = Table(title="benefits", title_justify="left")
    for col in ("benefit", "kind", "cost", "min tier", "limits"):
        benefits.add_column(col)
    for bid, b in cfg.benefits.items():
        cost = (
            f"{b.cost.fixed:g}"
            if b.cost.fixed is not None
            else f"{b.cost.pct_of_order:.0%} of order"
        )
        limits = ", ".join(
            x
            for x in (
                f"{b.max_per_month}/month" if b.max_per_month is not None else "",
                f"{b.max_per_year}/year" if b.max_per_year is not None else "",
                "birth month" if b.birth_month_only else "",
            )
            if x
        )
        benefits.add_row(bid, b.kind, cost, b.min_tier, limits)
    out.print(benefits)
    c = cfg.contact
    out.print(
        f"contact: ≤ {c.max_per_7d} per 7 days (ceiling {c.hard_ceiling_per_7d}), "
        f"{c.quiet_period_hours:g} h quiet period; budget ≤ "
        f"{cfg.budget.programme_share_of_revenue:.0%} of revenue",
        highlight=False,
    )
    out.print(f"reason codes: {', '.join(cfg.reason_codes)}", highlight=False)
