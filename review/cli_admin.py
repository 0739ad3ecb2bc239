"""Admin commands registered by app.py: `flask items import` and `flask queues apply|export`.

They call the same services as the admin pages, so a file imported from the shell is
checked by the same rules, reported the same way and audited the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from models import DataImport
from review.cli import service_session
from review.db import get_database
from review.redis_conn import get_rq_queue
from review.services import imports, pipeline, queue_config, queues
from review.services.errors import ServiceError

items_cli = AppGroup("items", help="Load items from files.")
queues_cli = AppGroup("queues", help="Queues as code: apply or export a TOML file.")

# Bad rows printed in the terminal; the CSV report written beside has every one.
PRINTED_PROBLEMS = 100


def _fail(exc: ServiceError) -> click.ClickException:
    details = "; ".join(f"{name}: {problem}" for name, problem in exc.fields.items())
    return click.ClickException(f"{exc.message} ({details})" if details else exc.message)


def _mapping_options(data_import: DataImport, options: dict[str, object]) -> dict[str, object]:
    """The suggested mapping with every option given on the command line applied on top."""
    mapping = dict(data_import.mapping)
    for key, value in options.items():
        if value not in (None, ()):
            mapping[key] = list(value) if isinstance(value, tuple) else value
    if options.get("payload_columns"):
        mapping["payload_json_column"] = options.get("payload_json_column")
    elif options.get("payload_json_column"):
        mapping["payload_columns"] = []
    return mapping


def _register(session: Session, path: Path, slug: str, options: dict[str, object]) -> int:
    queue = queues.get_queue(session, slug)
    data_import = imports.create_import(
        session, queue, None, path=path, original_filename=path.name, source="cli"
    )
    directory = imports.storage_dir(current_app.config.get("UPLOAD_DIR"), current_app.instance_path)
    directory.mkdir(parents=True, exist_ok=True)
    imports.begin_validation(
        session,
        data_import,
        _mapping_options(data_import, options),
        directory / f"import-{data_import.id}-errors.csv",
        None,
    )
    return data_import.id


def _validate(session: Session, import_id: int, size: int) -> DataImport:
    with click.progressbar(length=size, label="Validating", file=sys.stderr) as bar:
        done = 0
        for data_import in imports.validate_batches(session, import_id):
            session.commit()
            bar.update(data_import.bytes_done - done)
            done = data_import.bytes_done
    return session.get_one(DataImport, import_id)


def _print_report(data_import: DataImport) -> None:
    click.echo(
        f"{data_import.total_rows} rows: {data_import.valid_rows} valid "
        f"({imports.new_rows(data_import)} new, {data_import.existing_count} already in the "
        f"queue), {data_import.error_rows} with problems."
    )
    for problem in data_import.report[:PRINTED_PROBLEMS]:
        who = f" [{problem['external_id']}]" if problem["external_id"] else ""
        click.echo(f"  line {problem['line']}{who}: {problem['reason']}")
    if data_import.error_rows > PRINTED_PROBLEMS:
        click.echo(f"  ... {data_import.error_rows - PRINTED_PROBLEMS} more")
    if data_import.error_rows:
        click.echo(f"Every bad row is listed in {data_import.report_path}")


def _import(session: Session, import_id: int, size: int) -> DataImport:
    imports.confirm_import(session, session.get_one(DataImport, import_id), None)
    session.commit()
    warned = False
    with click.progressbar(length=size, label="Importing", file=sys.stderr) as bar:
        done = 0
        for pending in imports.import_batches(session, import_id):
            session.commit()  # enqueue only after the commit: workers must see the rows
            if pending and not pipeline.enqueue_recommendations(get_rq_queue(), pending):
                warned = True
            data_import = session.get_one(DataImport, import_id)
            bar.update(data_import.bytes_done - done)
            done = data_import.bytes_done
    if warned:
        click.echo("Warning: Redis is unreachable; the worker's sweeper will pick the items up.")
    return session.get_one(DataImport, import_id)


@items_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--queue", "slug", required=True, help="Slug of the queue to import into.")
@click.option("--id-column", help="Column holding each item's external id.")
@click.option(
    "--payload-column",
    "payload_columns",
    multiple=True,
    help="A column that becomes a payload field (repeat the option).",
)
@click.option("--payload-json-column", help="One column holding the payload as a JSON object.")
@click.option("--label-column", help="Column with an external recommendation's label.")
@click.option("--confidence-column", help="Column with that recommendation's confidence.")
@click.option("--model-column", help="Column naming the model that made it.")
@click.option("--model", "model_name", help="Model name when the file has no model column.")
@click.option("--priority-column", help="Column with an integer priority.")
@click.option("--dry-run", is_flag=True, help="Validate and report; write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows even if some are bad.")
def import_items_command(
    file: Path, slug: str, dry_run: bool, skip_invalid: bool, **options: object
) -> None:
    """Import items from a CSV or JSON Lines FILE into a queue.

    Every row is checked first, by the rules the API applies; nothing is written if any row
    is bad (unless --skip-invalid). Items already in the queue with the same payload are
    left alone, so importing a file again changes nothing.
    """
    path = file.resolve()
    with service_session() as session:
        import_id = _register(session, path, slug, options)
    session = get_database().session_factory()
    try:
        data_import = _validate(session, import_id, path.stat().st_size)
        if data_import.status == "failed":
            raise click.ClickException(f"cannot read {file}: {data_import.error_message}")
        _print_report(data_import)
        if dry_run:
            click.echo("Dry run: nothing imported.")
            return
        if data_import.error_rows and not skip_invalid:
            raise click.ClickException(
                "nothing imported: fix the rows above, or pass --skip-invalid to import the "
                "valid rows only"
            )
        data_import = _import(session, import_id, path.stat().st_size)
        click.echo(
            f"Imported into {slug}: {data_import.created_count} created, "
            f"{data_import.existing_count} already there, {data_import.skipped_count} skipped."
        )
    except ServiceError as exc:
        session.rollback()
        raise _fail(exc) from exc
    finally:
        session.close()


@queues_cli.command("apply")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Show the changes; apply nothing.")
def apply_queues_command(file: IO[str], dry_run: bool) -> None:
    """Create or update the queues described in a TOML FILE and print what changed."""
    with service_session() as session:
        results = queue_config.apply_config(session, queue_config.parse_config(file.read()), None)
        for line in queue_config.describe_changes(results):
            click.echo(line)
        if not any(result.changed for result in results):
            click.echo("No changes.")
        if dry_run:
            session.rollback()
            click.echo("Dry run: nothing applied.")


@queues_cli.command("export")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Write to this file instead of standard output.",
)
def export_queues_command(output: IO[str]) -> None:
    """Write every queue's configuration as TOML, in the format `queues apply` reads."""
    with service_session() as session:
        output.write(queue_config.export_config(session))
