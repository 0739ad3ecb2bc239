"""`flask audit ...`: verify the audit log's hash chain, seal pending events.

flask --app app audit verify     # exit 1 naming the first bad row if the chain is broken
flask --app app audit seal       # chain the events committed since the last seal
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from review.db import get_database
from review.services import audit_chain

audit_cli = AppGroup("audit", help="The tamper-evident audit log.")


def grace_seconds() -> int:
    """How long an event may wait unsealed before verify calls it a problem."""
    return int(
        current_app.config.get("AUDIT_SEAL_GRACE_SECONDS", audit_chain.DEFAULT_GRACE_SECONDS)
    )


@audit_cli.command("verify")
@click.option(
    "--grace",
    type=click.IntRange(min=0),
    default=None,
    help="Seconds an event may wait unsealed (default AUDIT_SEAL_GRACE_SECONDS or 300).",
)
def verify_command(grace: int | None) -> None:
    """Check every event's hash and link, the head, and that nothing waits unsealed."""
    grace = grace if grace is not None else grace_seconds()
    report = audit_chain.verify_snapshot(get_database(), grace)
    if report.problem is not None:
        raise click.ClickException(f"audit chain BROKEN: {report.problem.message}")
    head = f"seq {report.head_seq}, hash {report.head_hash}" if report.head_seq else "empty"
    click.echo(f"audit chain OK: {report.checked} events verified; head {head}.")
    if report.unsealed:
        click.echo(
            f"{report.unsealed} newer events wait to be sealed (within the "
            f"{report.grace_seconds}s grace period)."
        )


@audit_cli.command("seal")
def seal_command() -> None:
    """Chain the events committed since the last seal (workers also do this every sweep)."""
    from workers.audit_jobs import seal_pending  # workers sit above the services

    sealed = seal_pending(get_database())
    click.echo(f"sealed {sealed} audit event(s)")
