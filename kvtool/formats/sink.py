"""`ExportSink`: the one place an export's bytes go, for one process and range workers alike.

It owns the output's whole life (docs/design.md, Cursors, stops and stats): open (a file through
`OutputFile`, with its temp file and `.partial` resume, or a caller's stream), the format's
header, rendered batches, `finish()` (the format's footer, then a flush), `discard()` on a failure,
and `end()`: commit a complete file, or keep a stopped one as `.partial` with its cursor. A closed
pipe is a normal end (`closed`); any other write error is a StorageError naming the output.
Adding a format touches kvtool.formats.writers only: its renderer, header, footer and whether its
bytes from several processes may be concatenated (`concatenable`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from kvtool.errors import StorageError
from kvtool.formats.jsonl import Record, Render
from kvtool.formats.output_file import OutputFile, compressed
from kvtool.formats.writers import write_all


class ExportSink:
    """Bytes of one export, to the file `path` or the stream `out` (see the module)."""

    def __init__(
        self,
        *,
        path: Path | None,
        out: BinaryIO | None,
        render: Render,
        head: bytes = b"",
        footer: bytes = b"",
        resume_from: str | None = None,
        options: Mapping[str, Any] | None = None,
        identity: str | None = None,
        wait_for_reader: Callable[[], None] | None = None,
    ) -> None:
        self._render = render
        self._head = head
        self._footer = footer
        self.where = str(path) if path is not None else "stdout"
        self.bytes_written = 0
        self.closed = False  # the reader closed the pipe (`| head`): a quiet, normal end
        self.target: OutputFile | None = None
        if path is not None:
            self.target = OutputFile(
                path,
                resume_from=resume_from,
                options=options,
                identity=identity,
                wait_for_reader=wait_for_reader,
            )
            self.stream: BinaryIO = self.target.stream
        else:
            assert out is not None, "an export needs out= or path="
            self.stream = out

    @staticmethod
    def concatenable(path: Path | None, *, footer: bytes = b"") -> bool:
        """Whether range workers may write this output side by side: each writes its records
        to the same descriptor in turn, which a compressed file or a footer cannot take."""
        return not footer and (path is None or not compressed(path))

    def __enter__(self) -> ExportSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.discard()

    # -- writing ----------------------------------------------------------------------------------
    def _put(self, data: bytes) -> None:
        try:
            write_all(self.stream, data)
        except BrokenPipeError:
            raise
        except OSError as exc:  # e.g. a full disk: not a bug, an I/O error
            raise StorageError(f"writing {self.where}: {exc.strerror or exc}") from None
        self.bytes_written += len(data)

    def write_head(self) -> None:
        """The format's header (nothing when this run continues after a cursor)."""
        if self._head:
            self._put(self._head)

    def write(self, batch: Sequence[Record]) -> None:
        """One rendered batch; a closed pipe raises BrokenPipeError (the caller stops reading)."""
        if batch:
            self._put(self._render(batch))

    def written_elsewhere(self, nbytes: int) -> None:
        """Count bytes range workers wrote to `fileno()` directly."""
        self.bytes_written += nbytes

    def fileno(self) -> int:
        return self.stream.fileno()

    def flush(self) -> None:
        """Flush; a closed pipe sets `closed` instead of raising."""
        try:
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
        except OSError as exc:
            raise StorageError(f"writing {self.where}: {exc.strerror or exc}") from None

    def finish(self) -> None:
        """The records are all written: the footer, then a flush (not after a stop)."""
        if not self.closed and self._footer:
            try:
                self._put(self._footer)
            except BrokenPipeError:
                self.closed = True
        if not self.closed:
            self.flush()

    # -- ending -----------------------------------------------------------------------------------
    def discard(self) -> None:
        """A failed run: no file is left (a stream is the caller's)."""
        if self.target is not None:
            self.target.discard()

    def end(self, *, stopped: bool, cursor: str | None) -> Path | None:
        """Commit a complete file, or keep a stopped one as `.partial` with `cursor`; returns the
        file holding the records (None for a stream)."""
        if self.target is None:
            return None
        return self.target.keep_partial(cursor) if stopped else self.target.commit()
