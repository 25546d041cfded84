"""Shell completion beyond what Typer derives from the options: column family names read from a
database's OPTIONS file, and a zsh script whose first TAB completes when zsh autoloads it."""

from __future__ import annotations

from pathlib import Path

import typer

# Typer's zsh script only registers the completion function (compdef), which is right when the
# file is sourced; autoloaded from fpath (the documented install, and --install-completion's
# ~/.zfunc), the file *is* the completion function, so the first TAB merely defined it and
# completed nothing. Click's own template has the same branch.
ZSH_TEMPLATE = """
#compdef %(prog_name)s

%(complete_func)s() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" \\
    %(autocomplete_var)s=complete_zsh %(prog_name)s)
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # autoloaded from fpath: this is the first TAB, so complete it too
  compdef %(complete_func)s %(prog_name)s
  %(complete_func)s "$@"
else
  compdef %(complete_func)s %(prog_name)s
fi
"""


def install_zsh_template() -> None:
    """Make `--show-completion`, `--install-completion` and `_KVTOOL_COMPLETE=source_zsh` give
    ZSH_TEMPLATE (Typer keeps the template in two places; the same in 0.28 and 0.29)."""
    from typer import _completion_classes, _completion_shared

    _completion_shared._completion_scripts["zsh"] = ZSH_TEMPLATE
    _completion_classes.ZshComplete.source_template = ZSH_TEMPLATE


def column_families(ctx: typer.Context, incomplete: str) -> list[str]:
    """The column families of the DB given earlier on the command line that start with
    `incomplete`, from its newest OPTIONS file: no RocksDB open, nothing written, fast. Nothing,
    silently, without a DB or when the file cannot be read (completion must never print errors)."""
    db = ctx.params.get("db") or _db_before_option(ctx, incomplete)
    if db is None:
        return []
    from kvtool.engine.options_file import read_options_file

    try:
        parsed = read_options_file(Path(db))
    except (OSError, ValueError):
        return []
    if parsed is None:
        return []
    return [name for name in parsed.cf_options if name.startswith(incomplete)]


def _db_before_option(ctx: typer.Context, incomplete: str) -> Path | None:
    """DB when an option's value is being completed (`export DB --cf <TAB>`): Click's resilient
    parse stops at the option that lacks its value before it assigns positional arguments, so
    parse the words again without that option. The words are what Typer's scripts pass: zsh and
    fish in _TYPER_COMPLETE_ARGS, bash in COMP_WORDS."""
    import os
    import shlex

    line = os.environ.get("_TYPER_COMPLETE_ARGS") or os.environ.get("COMP_WORDS") or ""
    try:
        words = shlex.split(line)
    except ValueError:  # an open quote
        return None
    if incomplete and words and words[-1] == incomplete:
        words.pop()
    if words and words[-1].startswith("-"):
        words.pop()  # the option whose value is being completed
    if ctx.info_name not in words[1:]:
        return None
    rest = words[words.index(ctx.info_name, 1) + 1 :]
    try:
        parsed = ctx.command.make_context(
            ctx.info_name, rest, parent=ctx.parent, resilient_parsing=True
        )
    except Exception:  # completion never shows an error
        return None
    db = parsed.params.get("db")
    return Path(db) if db else None
