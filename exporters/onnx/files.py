"""Writing a graph so that no kill, at any moment, leaves a partial file or a stray temporary one.

On Linux the bytes go to an unnamed file in the target's folder (``O_TMPFILE``): it has no name until it is
complete and synced, so a process killed while writing leaves nothing. It then gets its name in one step:
``link('/proc/self/fd/N', path)`` where ``path`` does not exist yet, or, to replace an older file, a link to a
temporary name followed by ``rename`` over the old file (atomic; the temporary name exists for the
microseconds between the two calls and carries the writer's pid). Elsewhere, or where the file system does
not offer ``O_TMPFILE``, a named temporary file is written, synced and renamed. Either way, temporary files of
writers that no longer run are removed by the next export into the same folder (:func:`sweep`).
"""
import errno
import os
import time
import uuid

__all__ = ['write_atomically', 'sweep', 'temporary_name']

#: temporary files of an older exporter (no pid in the name) are removed once this old (seconds)
STALE_AFTER = 3600.0


def temporary_name(path):
    """A hidden temporary name next to ``path`` naming this process: ``.NAME.PID.RANDOM.tmp``."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f'.{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep(path):
    """Remove the temporary files that killed exports of ``path`` left in its folder.

    Returns
    -------
    list of str
        The removed files.
    """
    directory, name = os.path.split(os.path.abspath(path))
    prefix = f'.{name}.'
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith('.tmp')):
            continue
        middle = entry[len(prefix):-len('.tmp')].split('.')
        full = os.path.join(directory, entry)
        if len(middle) == 2 and middle[0].isdigit():
            stale = int(middle[0]) != os.getpid() and not _alive(int(middle[0]))
        else:  # .NAME.RANDOM.tmp of exporters before this one
            try:
                stale = time.time() - os.stat(full).st_mtime > STALE_AFTER
            except OSError:
                continue
        if stale:
            try:
                os.remove(full)
                removed.append(full)
            except OSError:
                pass
    return removed


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _sync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open_unnamed(directory):
    """An ``O_TMPFILE`` descriptor in ``directory``, or None where the system or file system lacks it."""
    flag = getattr(os, 'O_TMPFILE', None)
    if flag is None or not os.path.isdir('/proc/self/fd'):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o666)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


def _link(fd, target):
    """Give the unnamed file ``fd`` the name ``target`` (which must not exist).

    ``linkat(2)`` with ``AT_SYMLINK_FOLLOW`` on ``/proc/self/fd/N``; ``os.link`` calls plain ``link(2)``, which
    does not follow the magic link, unless a directory descriptor is passed, hence ``src_dir_fd``.
    """
    proc = os.open('/proc/self/fd', os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.link(str(fd), target, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _link_unnamed(fd, path):
    """Put the unnamed file ``fd`` at ``path``, replacing any file there in one step."""
    try:
        _link(fd, path)
        return
    except FileExistsError:
        pass
    temporary = temporary_name(path)
    _link(fd, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def write_atomically(path, data):
    """Write ``data`` to ``path``: afterwards ``path`` holds either all of it, or whatever it held before.

    Parameters
    ----------
    path : str
        The target; its folder must exist.
    data : bytes

    Returns
    -------
    str
        How the file got its name: ``'O_TMPFILE'`` or ``'named temporary file'``.

    Raises
    ------
    PermissionError
        If the folder is not writable.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    sweep(path)
    try:
        fd = _open_unnamed(directory)
    except PermissionError:
        raise PermissionError(f'cannot write to {directory}: permission denied') from None
    if fd is not None:
        try:
            _write_all(fd, data)
            _link_unnamed(fd, path)
        finally:
            os.close(fd)
        _sync_directory(directory)
        return 'O_TMPFILE'
    temporary = temporary_name(path)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except PermissionError:
        raise PermissionError(f'cannot write to {directory}: permission denied') from None
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    _sync_directory(directory)
    return 'named temporary file'
