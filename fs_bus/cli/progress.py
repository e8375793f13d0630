"""A progress bar for artifact transfers, drawn on stderr only when a person is watching.

The client reports ``(bytes done, bytes total)`` as chunks are acknowledged or read;
``TransferBar`` is that callback. It shows nothing for small artifacts (they take
less than a blink), nothing when stderr is not a terminal (scripts, CI), and
removes itself when the transfer ends, so the command's own output stays clean.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TransferSpeedColumn

LARGE = 1 << 20  # artifacts from 1 MiB get a bar: a componentize-py guest is ~18 MB


class TransferBar:
    def __init__(self, label: str, console: Console, *, threshold: int = LARGE, enabled: bool | None = None):
        self.label = label
        self.console = console
        self.threshold = threshold
        self.enabled = console.is_terminal if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < self.threshold:
            return
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
