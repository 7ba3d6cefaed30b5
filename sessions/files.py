"""Files Popup writes for people to take away — exports, artifacts, backups — hold members' words.

So each one is:

* **private**: created with mode 0600 (narrowed further by a stricter umask), whatever the file it
  replaces allowed; a folder made for them is 0700;
* **never written through a symlink**: the content goes into a fresh temporary file beside the
  target, made by :func:`tempfile.mkstemp` (``O_CREAT | O_EXCL``: a name planted in advance, a
  symlink included, makes it fail instead of being followed), then moved into place. A rename
  replaces the *name* at the target; a symlink there is replaced, never written through;
* **never put over an existing name unless asked** (``replace=False``): the move is then a hard
  link, which fails when anything has the name by then, so there is no window between a check and
  the write; on file systems without hard links, a check just before a rename;
* **whole**: a reader sees the old file or the new one, never half of one, and a failure (or an
  interrupt) removes the temporary file and leaves the old one as it was.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

from sessions.errors import PopupError

_log = logging.getLogger(__name__)

# link(2) fails with these where the file system has no hard links (FAT, some network mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})


class OutputExists(PopupError):
    """The output's name is taken (by a file, a folder or a symlink) and replacing was not asked for."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists")
        self.path = path


def private_folder(folder: Path) -> Path:
    """``folder``, created with mode 0700 (and its missing parents as the umask says) if it is missing.

    An existing folder keeps its mode: it is the owner's choice, and may be shared on purpose.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@contextmanager
def private_file(target: Path, *, replace: bool) -> Iterator[Path]:
    """A new empty private file beside ``target``, to fill by name (e.g. SQLite's backup into it).

    Moved to ``target`` when the block ends without an error, removed when it raises.
    :class:`OutputExists` is raised on entry — before any work — and again at the move if the
    name was taken meanwhile, unless ``replace``.
    """
    if not replace and os.path.lexists(target):
        raise OutputExists(target)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        _move(temp, target, replace=replace)
    finally:
        temp.unlink(missing_ok=True)  # still there unless it was renamed into place


@contextmanager
def private_text(target: Path, *, replace: bool, newline: str | None = None) -> Iterator[TextIO]:
    """A UTF-8 text file at ``target`` written as :func:`private_file` says."""
    with (
        private_file(target, replace=replace) as temp,
        open(temp, "w", encoding="utf-8", newline=newline, opener=_no_follow) as sink,
    ):
        yield sink


@contextmanager
def private_bytes(target: Path, *, replace: bool) -> Iterator[BinaryIO]:
    """A binary file at ``target`` written as :func:`private_file` says."""
    with private_file(target, replace=replace) as temp, open(temp, "wb", opener=_no_follow) as sink:
        yield sink


def _no_follow(path: str, flags: int) -> int:
    # The temporary file is ours (mkstemp made it); refuse to follow it should it have been swapped.
    return os.open(path, flags | os.O_NOFOLLOW, 0o600)


def _move(temp: Path, target: Path, *, replace: bool) -> None:
    if replace:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise OutputExists(target) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        _log.debug("no hard links at %s (%s): checking, then renaming", target.parent, exc.strerror)
        if os.path.lexists(target):
            raise OutputExists(target) from None
        os.replace(temp, target)
