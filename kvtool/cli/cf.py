"""`kvtool cf list|create|drop`: column families."""

from __future__ import annotations

from typing import Annotated

import typer

from kvtool.cli.completion import column_families
from kvtool.cli.options import DbPath, Force, WaitLock
from kvtool.formats.units import parse_duration

cf_app = typer.Typer(
    help="""List, create and drop column families.

    create and drop take the database's LOCK: they exit 75 if another process holds it.

    Examples:

        kvtool cf list demo.db

        kvtool cf create demo.db sessions
    """,
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Column family name.", metavar="NAME")]
# drop names one that exists: TAB offers the database's column families.
ExistingName = Annotated[
    str,
    typer.Argument(help="Column family name.", metavar="NAME", autocompletion=column_families),
]


@cf_app.command("list")
def list_(db: DbPath) -> None:
    """Print the column families, one per line.

    Read-only, like info: the database directory is left as it was.

    Examples:

        kvtool cf list demo.db
    """
    from kvtool.ops.cf import list_column_families

    for name in list_column_families(db):
        typer.echo(name)


@cf_app.command("create")
def create(db: DbPath, name: Name, wait_lock: WaitLock = "0s", force: Force = False) -> None:
    """Create a column family with the default column family's options.

    Exits 2 if the column family already exists.

    Examples:

        kvtool cf create demo.db sessions
    """
    from kvtool.ops.cf import create_column_family

    create_column_family(
        db,
        name,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )


@cf_app.command("drop")
def drop(db: DbPath, name: ExistingName, wait_lock: WaitLock = "0s", force: Force = False) -> None:
    """Drop a column family and all its data.

    There is no undo: take a checkpoint first if the data may be needed. The default
    column family cannot be dropped.

    Examples:

        kvtool cf drop demo.db sessions
    """
    from kvtool.ops.cf import drop_column_family

    drop_column_family(
        db,
        name,
        wait_lock=parse_duration(wait_lock, option="--wait-lock", zero_ok=True),
        force=force,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(cf_app, name="cf")
