"""`flask datasets ...`: build a snapshot now, delete expired files, retrain and evaluate.

flask --app app datasets build 12        # run the build job in this process
flask --app app datasets cleanup         # delete files past EXPORT_RETENTION_DAYS
flask --app app datasets retrain 12      # old model vs retrained, on v12's eval split
flask --app app datasets retrain 12 --activate [--force]   # ... and put it in force
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from models.base import utcnow
from review.cli import service_session
from review.db import get_database
from review.services import datasets
from review.services.errors import ServiceError
from review.services.model_versions import activate_candidate

datasets_cli = AppGroup("datasets", help="Dataset snapshots for the ML team.")


def _settings() -> datasets.ExportSettings:
    return datasets.ExportSettings.from_config(current_app.config)


@datasets_cli.command("build")
@click.argument("snapshot_id", type=int)
def build_command(snapshot_id: int) -> None:
    """Build SNAPSHOT_ID here instead of in a worker (a queued or failed one)."""
    from workers.dataset_jobs import run_build  # workers sit above the services

    try:
        status = run_build(get_database(), _settings(), snapshot_id)
    except Exception as exc:
        raise click.ClickException(f"snapshot {snapshot_id} failed: {exc}") from exc
    click.echo(f"snapshot {snapshot_id}: {status}")


@datasets_cli.command("cleanup")
def cleanup_command() -> None:
    """Delete the files of expired snapshots; their metadata and datasheets stay."""
    with service_session() as session:
        expired = datasets.expire_snapshots(session, _settings(), utcnow())
    click.echo(f"expired {len(expired)} snapshot(s)" + (f": {expired}" if expired else ""))


@datasets_cli.command("retrain")
@click.argument("snapshot_id", type=int)
@click.option(
    "--activate",
    is_flag=True,
    help="Make the retrained model the queue's active model, if the promotion gate passes.",
)
@click.option(
    "--force",
    is_flag=True,
    help="With --activate: activate even if the gate holds it back (audited).",
)
def retrain_command(snapshot_id: int, activate: bool, force: bool) -> None:
    """Retrain the local model on SNAPSHOT_ID's train split and print, per label, how it
    and the active model do on its eval split. The report is also shown on the ML page."""
    from workers.dataset_eval import format_report, retrain_on_snapshot, store_candidate

    if force and not activate:
        raise click.UsageError("--force only goes with --activate")
    with service_session() as session:
        snapshot = datasets.get_snapshot(session, snapshot_id)
        retrained = retrain_on_snapshot(session, snapshot, _settings())
        # Set when the build succeeded, which retrain_on_snapshot has checked.
        assert snapshot.sha256 is not None
        click.echo(f"{snapshot.queue.slug} v{snapshot.version} (sha256 {snapshot.sha256[:12]})")
        click.echo(format_report(retrained.report))
        if activate:
            store_candidate(session, snapshot, retrained)
            try:
                model = activate_candidate(session, snapshot, user=None, actor="cli", force=force)
            except ServiceError as exc:
                session.commit()  # keep the report and the candidate, held back
                raise click.ClickException(f"{exc}; add --force to activate it anyway") from exc
            click.echo(f"activated {snapshot.queue.slug} model v{model.version}")
