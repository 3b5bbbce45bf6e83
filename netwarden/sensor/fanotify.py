"""Watch hashed executables with fanotify and report which ones changed.

Inode marks with FAN_REPORT_FID (kernel >= 5.1) see modification in place (MODIFY,
CLOSE_WRITE), chmod/chown/touch (ATTRIB) and deletion (DELETE_SELF). A replacement by rename
shows as ATTRIB|DELETE_SELF on the old inode; the new file is a new inode and is marked when it
is first hashed. Events carry a file handle, not a path: each mark remembers the handle
name_to_handle_at() gave for the file, so an event maps back to (device, inode).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import select
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from netwarden.sensor.fileid import same_file

log = logging.getLogger(__name__)

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_REPORT_FID = 0x200
FAN_UNLIMITED_MARKS = 0x20
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MODIFY = 0x2
FAN_ATTRIB = 0x4
FAN_CLOSE_WRITE = 0x8
FAN_DELETE_SELF = 0x400
FAN_Q_OVERFLOW = 0x4000
FAN_EVENT_INFO_TYPE_FID = 1
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400

WATCH_MASK = FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_DELETE_SELF

_METADATA = struct.Struct("=IBBHQii")        # struct fanotify_event_metadata
_INFO_HEADER = struct.Struct("=BBH")         # struct fanotify_event_info_header
_HANDLE_HEADER = struct.Struct("=Ii")        # struct file_handle: handle_bytes, handle_type
MAX_HANDLE_SZ = 128


class FanotifyUnavailable(OSError):
    """fanotify with FID reporting cannot be used here (kernel, privileges)."""


@dataclass(frozen=True)
class FileChange:
    """Something happened to a watched file."""

    dev: int
    ino: int
    path: str
    mask: int

    @property
    def deleted(self) -> bool:
        return bool(self.mask & FAN_DELETE_SELF)


class _FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint32), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                                   ctypes.c_char_p]
    libc.name_to_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p,
                                       ctypes.POINTER(_FileHandle),
                                       ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    return libc


def file_handle(path: str, libc: ctypes.CDLL | None = None) -> tuple[int, bytes]:
    """(handle_type, handle bytes) of the file at ``path`` (magic links followed)."""
    libc = libc or _libc()
    handle = _FileHandle(handle_bytes=MAX_HANDLE_SZ)
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, path.encode(), ctypes.byref(handle),
                              ctypes.byref(mount_id), AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"name_to_handle_at({path}): {os.strerror(err)}")
    return handle.handle_type, bytes(handle.f_handle[: handle.handle_bytes])


def parse_events(buffer: bytes) -> list[tuple[int, tuple[int, bytes] | None]]:
    """Split a read() of a FAN_REPORT_FID group into (mask, (handle_type, handle) or None)."""
    events = []
    offset = 0
    while offset + _METADATA.size <= len(buffer):
        event_len, _vers, _res, metadata_len, mask, fd, _pid = _METADATA.unpack_from(buffer,
                                                                                     offset)
        if event_len < _METADATA.size:
            break
        if fd >= 0:
            os.close(fd)  # not expected with FID reporting, but never leak it
        handle = None
        info = offset + metadata_len
        end = offset + event_len
        while info + _INFO_HEADER.size <= end:
            info_type, _pad, info_len = _INFO_HEADER.unpack_from(buffer, info)
            if info_len == 0:
                break
            if info_type == FAN_EVENT_INFO_TYPE_FID:
                start = info + _INFO_HEADER.size + 8  # skip the fsid
                size, handle_type = _HANDLE_HEADER.unpack_from(buffer, start)
                body = start + _HANDLE_HEADER.size
                handle = (handle_type, bytes(buffer[body: body + size]))
            info += info_len
        events.append((mask, handle))
        offset = end
    return events


class ExecutableWatch:
    """A fanotify group with one inode mark per watched executable.

    ``on_change`` runs in the watch thread for every event on a watched file.
    """

    def __init__(self, on_change: Callable[[FileChange], None]) -> None:
        self._libc = _libc()
        fd = self._libc.fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC
                                      | FAN_NONBLOCK | FAN_UNLIMITED_MARKS, os.O_RDONLY)
        if fd < 0:
            err = ctypes.get_errno()
            raise FanotifyUnavailable(err, f"fanotify_init: {os.strerror(err)}")
        self._fd = fd
        self._on_change = on_change
        self._marks: dict[tuple[int, bytes], tuple[int, int, str]] = {}
        self._by_inode: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.overflows = 0
        self.mark_failures = 0

    def watch(self, path: str, dev: int, ino: int) -> bool:
        """Mark the file at ``path`` (which must be (dev, ino)); False if it cannot be."""
        with self._lock:
            if (dev, ino) in self._by_inode:
                return True
        try:
            st = os.stat(path)
            if not same_file(dev, ino, st.st_dev, st.st_ino):
                return False
            handle = file_handle(path, self._libc)
        except OSError as exc:
            log.debug("cannot watch %s: %s", path, exc)
            self.mark_failures += 1
            return False
        if self._libc.fanotify_mark(self._fd, FAN_MARK_ADD, WATCH_MASK, AT_FDCWD,
                                    path.encode()) != 0:
            err = ctypes.get_errno()
            log.debug("fanotify_mark %s: %s", path, os.strerror(err))
            self.mark_failures += 1
            return False
        with self._lock:
            self._marks[handle] = (dev, ino, path)
            self._by_inode[(dev, ino)] = handle
        return True

    def watched(self) -> int:
        with self._lock:
            return len(self._marks)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fanotify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        if self._thread:
            self._thread.join(timeout=2)
            self._thread = None
        os.close(self._fd)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._stopping:
            if not poller.poll(200):
                continue
            try:
                data = os.read(self._fd, 65536)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                log.error("fanotify read: %s", exc)
                return
            self.dispatch(data)

    def dispatch(self, data: bytes) -> None:
        for mask, handle in parse_events(data):
            if mask & FAN_Q_OVERFLOW:
                self.overflows += 1
                continue
            with self._lock:
                target = self._marks.get(handle) if handle else None
                if target and mask & FAN_DELETE_SELF:
                    # The inode is gone: the kernel dropped the mark with it.
                    del self._marks[handle]  # type: ignore[arg-type]
                    self._by_inode.pop(target[:2], None)
            if target:
                self._on_change(FileChange(target[0], target[1], target[2], mask))
