"""A thin ctypes binding to the system libbpf (``libbpf.so.1``, libbpf >= 1.0).

Only what the loader and collectors use: open/load/close objects, set read-only globals and map
sizes before load, choose programs, attach them, drive ring buffers and read maps in batches.
libbpf >= 1.0 reports errors as a NULL pointer with errno set, or a negative errno return;
both become :class:`LibbpfError` here so callers never test sentinels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)

BTF_KIND_STRUCT = 4
BTF_KIND_TYPEDEF = 8
BTF_KIND_FUNC = 12
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15

LIBBPF_WARN = 0
LIBBPF_INFO = 1
LIBBPF_DEBUG = 2


class LibbpfError(OSError):
    """A libbpf call failed; ``errno`` is the kernel's or libbpf's error number."""

    def __init__(self, call: str, err: int, detail: str = "") -> None:
        err = abs(err)
        message = f"{call} failed: {os.strerror(err)} (errno {err})"
        super().__init__(err, message + (f": {detail}" if detail else ""))
        self.call = call


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


class _BtfVarSecinfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("offset", ctypes.c_uint32),
                ("size", ctypes.c_uint32)]


class _BatchOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("elem_flags", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_P, [_PRINT_FN]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "bpf_object__open_file": (_P, [ctypes.c_char_p, _P]),
    "bpf_object__load": (ctypes.c_int, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__btf": (_P, [_P]),
    "bpf_object__find_program_by_name": (_P, [_P, ctypes.c_char_p]),
    "bpf_object__find_map_by_name": (_P, [_P, ctypes.c_char_p]),
    "bpf_program__set_autoload": (ctypes.c_int, [_P, ctypes.c_bool]),
    "bpf_program__fd": (ctypes.c_int, [_P]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_cgroup": (_P, [_P, ctypes.c_int]),
    "bpf_link__destroy": (ctypes.c_int, [_P]),
    "bpf_link__fd": (ctypes.c_int, [_P]),
    "bpf_link__pin": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "bpf_link__unpin": (ctypes.c_int, [_P]),
    "bpf_link__open": (_P, [ctypes.c_char_p]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_map__name": (ctypes.c_char_p, [_P]),
    "bpf_map__set_pin_path": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "bpf_map__is_pinned": (ctypes.c_bool, [_P]),
    "bpf_map_lookup_batch": (
        ctypes.c_int, [ctypes.c_int, _P, _P, _P, _P, ctypes.POINTER(ctypes.c_uint32), _P]),
    "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, _P]),
    "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "bpf_iter_create": (ctypes.c_int, [ctypes.c_int]),
    "bpf_map__fd": (ctypes.c_int, [_P]),
    "bpf_map__set_max_entries": (ctypes.c_int, [_P, ctypes.c_uint32]),
    "bpf_map__key_size": (ctypes.c_uint32, [_P]),
    "bpf_map__value_size": (ctypes.c_uint32, [_P]),
    "bpf_map__initial_value": (_P, [_P, ctypes.POINTER(ctypes.c_size_t)]),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, _P, _P]),
    "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, _P, _P, ctypes.c_uint64]),
    "bpf_map_lookup_and_delete_batch": (
        ctypes.c_int, [ctypes.c_int, _P, _P, _P, _P, ctypes.POINTER(ctypes.c_uint32), _P]),
    "bpf_obj_get_info_by_fd": (ctypes.c_int, [ctypes.c_int, _P, ctypes.POINTER(ctypes.c_uint32)]),
    "ring_buffer__new": (_P, [ctypes.c_int, _SAMPLE_FN, _P, _P]),
    "ring_buffer__poll": (ctypes.c_int, [_P, ctypes.c_int]),
    "ring_buffer__consume": (ctypes.c_int, [_P]),
    "ring_buffer__add": (ctypes.c_int, [_P, ctypes.c_int, _SAMPLE_FN, _P]),
    "ring_buffer__epoll_fd": (ctypes.c_int, [_P]),
    "ring_buffer__free": (None, [_P]),
    "bpf_prog_load": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, _P,
                                     ctypes.c_size_t, _P]),
    "btf__load_vmlinux_btf": (_P, []),
    "btf__free": (None, [_P]),
    "btf__find_by_name_kind": (ctypes.c_int32, [_P, ctypes.c_char_p, ctypes.c_uint32]),
    "btf__type_by_id": (ctypes.POINTER(_BtfType), [_P, ctypes.c_uint32]),
    "btf__name_by_offset": (ctypes.c_char_p, [_P, ctypes.c_uint32]),
}


class Libbpf:
    """The loaded library with typed functions; one per process (see :func:`libbpf`)."""

    def __init__(self, name: str = "libbpf.so.1") -> None:
        try:
            self._lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise LibbpfError("dlopen(libbpf.so.1)", errno.ENOENT,
                              f"{exc}; install the libbpf1 package") from exc
        for fname, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self._lib, fname)
            fn.restype = restype
            fn.argtypes = argtypes
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                         ctypes.c_void_p]
        self._log_lock = threading.Lock()
        self._captured: list[str] | None = None
        # libbpf calls this from whatever thread runs a libbpf call; keep the reference alive.
        self._print_cb = _PRINT_FN(self._on_print)
        self._lib.libbpf_set_print(self._print_cb)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lib, name)

    def _on_print(self, level: int, fmt: bytes, va_list: int) -> int:
        # va_list is passed by reference on x86-64 and arm64, so libc can format it for us.
        buf = ctypes.create_string_buffer(1 << 20)  # a verifier log is one message
        self._libc.vsnprintf(buf, len(buf), fmt, va_list)
        text = buf.value.decode(errors="replace").rstrip()
        captured = self._captured
        if captured is not None and level <= LIBBPF_INFO:
            captured.append(text)
        log.log(logging.WARNING if level == LIBBPF_WARN else logging.DEBUG, "libbpf: %s", text)
        return 0

    def capture_log(self) -> "_LogCapture":
        """Collect libbpf's warnings while a block runs (to say why a load failed)."""
        return _LogCapture(self)


class _LogCapture:
    def __init__(self, lib: Libbpf) -> None:
        self._lib = lib
        self.lines: list[str] = []

    def __enter__(self) -> "_LogCapture":
        self._lib._log_lock.acquire()
        self._lib._captured = self.lines
        return self

    def __exit__(self, *exc: object) -> None:
        self._lib._captured = None
        self._lib._log_lock.release()


_instance: Libbpf | None = None
_instance_lock = threading.Lock()


def libbpf() -> Libbpf:
    """The process-wide binding, created on first use (never at import)."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = Libbpf()
        return _instance


def _check_ptr(call: str, ptr: int | None) -> int:
    if not ptr:
        raise LibbpfError(call, ctypes.get_errno() or errno.EINVAL)
    return ptr


def _check_int(call: str, ret: int) -> int:
    if ret < 0:
        raise LibbpfError(call, ret)
    return ret


class Link:
    """An attached program; detached by :meth:`destroy` (or when the process exits)."""

    def __init__(self, ptr: int, name: str = "") -> None:
        self._ptr: int | None = ptr
        self.name = name
        #: Pinned in bpffs (by this process or an earlier one): destroy() leaves it attached.
        self.pinned = False
        #: Opened from an earlier sensor's pin (its program counted while no sensor ran).
        self.kept = False

    @property
    def fd(self) -> int:
        if not self._ptr:
            raise ValueError(f"link {self.name} is destroyed")
        return _check_int("bpf_link__fd", libbpf().bpf_link__fd(self._ptr))

    def read_iterator(self, chunk: int = 1 << 16) -> bytes:
        """Run an iterator link once and return everything its program wrote."""
        fd = _check_int("bpf_iter_create", libbpf().bpf_iter_create(self.fd))
        try:
            parts = []
            while data := os.read(fd, chunk):
                parts.append(data)
            return b"".join(parts)
        finally:
            os.close(fd)

    @classmethod
    def open_pinned(cls, path: str, name: str) -> Link:
        """A link pinned in bpffs by an earlier process (its program still attached)."""
        ptr = libbpf().bpf_link__open(path.encode())
        link = cls(_check_ptr(f"open pinned link {path}", ptr), name)
        link.pinned = True
        return link

    def pin(self, path: str) -> None:
        """Pin in bpffs: the program stays attached after this process exits."""
        _check_int(f"pin {self.name} at {path}",
                   libbpf().bpf_link__pin(self._live(), path.encode()))
        self.pinned = True

    def unpin(self) -> None:
        if self.pinned and self._ptr:
            ret = libbpf().bpf_link__unpin(self._ptr)
            if ret < 0 and ret != -errno.ENOENT:
                _check_int(f"unpin {self.name}", ret)
            self.pinned = False

    def _live(self) -> int:
        if not self._ptr:
            raise ValueError(f"link {self.name} is destroyed")
        return self._ptr

    def destroy(self) -> None:
        """Detach (unless pinned: then only this process's handle is closed)."""
        if self._ptr:
            libbpf().bpf_link__destroy(self._ptr)
            self._ptr = None


class Program:
    def __init__(self, ptr: int, name: str) -> None:
        self._ptr = ptr
        self.name = name

    def set_autoload(self, enabled: bool) -> None:
        _check_int(f"bpf_program__set_autoload({self.name})",
                   libbpf().bpf_program__set_autoload(self._ptr, enabled))

    @property
    def fd(self) -> int:
        return _check_int(f"bpf_program__fd({self.name})", libbpf().bpf_program__fd(self._ptr))

    def attach(self) -> Link:
        ptr = libbpf().bpf_program__attach(self._ptr)
        return Link(_check_ptr(f"attach {self.name}", ptr), self.name)

    def attach_cgroup(self, cgroup_fd: int) -> Link:
        ptr = libbpf().bpf_program__attach_cgroup(self._ptr, cgroup_fd)
        return Link(_check_ptr(f"attach {self.name} to cgroup", ptr), self.name)

    def recursion_misses(self) -> int:
        """Runs the kernel skipped because the program was already running on that CPU."""
        return prog_info(self.fd).recursion_misses


class Map:
    def __init__(self, ptr: int, name: str) -> None:
        self._ptr = ptr
        self.name = name

    def set_max_entries(self, entries: int) -> None:
        _check_int(f"bpf_map__set_max_entries({self.name})",
                   libbpf().bpf_map__set_max_entries(self._ptr, entries))

    @property
    def fd(self) -> int:
        return _check_int(f"bpf_map__fd({self.name})", libbpf().bpf_map__fd(self._ptr))

    @property
    def key_size(self) -> int:
        return int(libbpf().bpf_map__key_size(self._ptr))

    @property
    def value_size(self) -> int:
        return int(libbpf().bpf_map__value_size(self._ptr))

    def set_pin_path(self, path: str) -> None:
        """Before load: reuse the map pinned at ``path`` if there is one, else pin it there."""
        _check_int(f"bpf_map__set_pin_path({self.name})",
                   libbpf().bpf_map__set_pin_path(self._ptr, path.encode()))

    @property
    def is_pinned(self) -> bool:
        return bool(libbpf().bpf_map__is_pinned(self._ptr))

    def initial_value(self) -> ctypes.Array[ctypes.c_char]:
        """The writable initial contents of a global-data map (before load)."""
        size = ctypes.c_size_t()
        ptr = libbpf().bpf_map__initial_value(self._ptr, ctypes.byref(size))
        _check_ptr(f"bpf_map__initial_value({self.name})", ptr)
        return (ctypes.c_char * size.value).from_address(ptr)


class BpfObject:
    """One opened BPF ELF object: programs and maps by name, then load."""

    def __init__(self, path: str) -> None:
        lib = libbpf()
        self.path = path
        with lib.capture_log() as capture:
            ptr = lib.bpf_object__open_file(path.encode(), None)
        if not ptr:
            raise LibbpfError(f"open {path}", ctypes.get_errno() or errno.EINVAL,
                              "; ".join(capture.lines[-3:]))
        self._ptr: int | None = ptr

    def _live(self) -> int:
        if not self._ptr:
            raise ValueError(f"{self.path} is closed")
        return self._ptr

    def program(self, name: str) -> Program:
        ptr = libbpf().bpf_object__find_program_by_name(self._live(), name.encode())
        if not ptr:
            raise LibbpfError(f"find program {name!r} in {self.path}", errno.ENOENT)
        return Program(ptr, name)

    def map(self, name: str) -> Map:
        ptr = libbpf().bpf_object__find_map_by_name(self._live(), name.encode())
        if not ptr:
            raise LibbpfError(f"find map {name!r} in {self.path}", errno.ENOENT)
        return Map(ptr, name)

    def maps(self) -> list[Map]:
        """Every map of the object, its global-data maps (.rodata, .bss) included."""
        lib = libbpf()
        found, ptr = [], lib.bpf_object__next_map(self._live(), None)
        while ptr:
            found.append(Map(ptr, lib.bpf_map__name(ptr).decode()))
            ptr = lib.bpf_object__next_map(self._live(), ptr)
        return found

    def global_offsets(self, section: str = ".rodata") -> dict[str, tuple[int, int]]:
        """Name -> (offset, size) of each global variable in a data section, from BTF."""
        lib = libbpf()
        btf = lib.bpf_object__btf(self._live())
        sec_id = lib.btf__find_by_name_kind(btf, section.encode(), BTF_KIND_DATASEC)
        if sec_id < 0:
            return {}
        sec = lib.btf__type_by_id(btf, sec_id).contents
        vlen = sec.info & 0xFFFF
        base = ctypes.addressof(sec) + ctypes.sizeof(_BtfType)
        result: dict[str, tuple[int, int]] = {}
        for i in range(vlen):
            info = _BtfVarSecinfo.from_address(base + i * ctypes.sizeof(_BtfVarSecinfo))
            var = lib.btf__type_by_id(btf, info.type).contents
            name = lib.btf__name_by_offset(btf, var.name_off).decode()
            result[name] = (info.offset, info.size)
        return result

    def set_rodata(self, values: Mapping[str, int | tuple[int, ...]]) -> None:
        """Set ``const volatile`` globals before load (integers, little-endian host order; a
        tuple fills an array of integers, its items each ``size / len`` bytes)."""
        offsets = self.global_offsets(".rodata")
        data = self.map(self._rodata_map_name()).initial_value()
        for name, value in values.items():
            if name not in offsets:
                raise LibbpfError(f"set {name} in {self.path}", errno.ENOENT,
                                  "no such read-only global")
            offset, size = offsets[name]
            items = value if isinstance(value, tuple) else (value,)
            if not items or size % len(items):
                raise LibbpfError(f"set {name} in {self.path}", errno.EINVAL,
                                  f"{len(items)} values for {size} bytes")
            item_size = size // len(items)
            raw = b"".join(int(item).to_bytes(item_size, "little") for item in items)
            ctypes.memmove(ctypes.addressof(data) + offset, raw, size)

    def _rodata_map_name(self) -> str:
        # libbpf names global-data maps "<object name prefix>.rodata" (8 chars of the name).
        base = os.path.basename(self.path).split(".")[0]
        return f"{base[:8]}.rodata"

    def load(self) -> list[str]:
        """Load everything with autoload set; on failure the error carries libbpf's log."""
        lib = libbpf()
        with lib.capture_log() as capture:
            ret = lib.bpf_object__load(self._live())
        if ret < 0:
            raise LoadError(self.path, ret, capture.lines)
        return capture.lines

    def close(self) -> None:
        if self._ptr:
            libbpf().bpf_object__close(self._ptr)
            self._ptr = None


class LoadError(LibbpfError):
    """bpf_object__load failed; ``log`` holds libbpf's messages (verifier output included)."""

    def __init__(self, path: str, err: int, log_lines: list[str]) -> None:
        super().__init__(f"load {os.path.basename(path)}", err)
        self.log = log_lines


class RingBuffer:
    """libbpf ring buffers over one or more maps; ``handler(bytes)`` runs for every record.

    Not thread-safe in libbpf: callers serialise :meth:`consume` (the sensor does, so its
    drain can take pending records before it reads flows).
    """

    def __init__(self, map_fd: int, handler: Callable[[bytes], None]) -> None:
        # ctypes callbacks must outlive the ring buffer: keep the references on self.
        self._callbacks = [_SAMPLE_FN(self._wrap(handler))]
        ptr = libbpf().ring_buffer__new(map_fd, self._callbacks[0], None, None)
        self._ptr: int | None = _check_ptr("ring_buffer__new", ptr)

    @staticmethod
    def _wrap(handler: Callable[[bytes], None]) -> Callable[[int, int, int], int]:
        def on_sample(_ctx: int, data: int, size: int) -> int:
            handler(ctypes.string_at(data, size))
            return 0
        return on_sample

    def add(self, map_fd: int, handler: Callable[[bytes], None]) -> None:
        callback = _SAMPLE_FN(self._wrap(handler))
        self._callbacks.append(callback)
        _check_int("ring_buffer__add", libbpf().ring_buffer__add(self._ptr, map_fd, callback,
                                                                  None))

    @property
    def epoll_fd(self) -> int:
        return _check_int("ring_buffer__epoll_fd", libbpf().ring_buffer__epoll_fd(self._ptr))

    def consume(self) -> int:
        """Handle every record available now, without waiting."""
        if not self._ptr:
            return 0
        ret = libbpf().ring_buffer__consume(self._ptr)
        if ret == -errno.EINTR:
            return 0
        return _check_int("ring_buffer__consume", ret)

    def close(self) -> None:
        if self._ptr:
            libbpf().ring_buffer__free(self._ptr)
            self._ptr = None


def map_lookup(fd: int, key: ctypes.Array[ctypes.c_char] | ctypes.Structure | ctypes._SimpleCData,
               value: Any) -> bool:
    ret = libbpf().bpf_map_lookup_elem(fd, ctypes.byref(key), ctypes.byref(value))
    if ret == -errno.ENOENT:
        return False
    _check_int("bpf_map_lookup_elem", ret)
    return True


def map_update(fd: int, key: Any, value: Any, flags: int = 0) -> None:
    _check_int("bpf_map_update_elem",
               libbpf().bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), flags))


def map_drain_batches(fd: int, key_size: int, value_stride: int,
                      batch: int = 1024) -> Iterator[tuple[bytes, bytes, int]]:
    """Look up and delete every entry, in batches: yields (keys, values, count) buffers.

    ``value_stride`` is the bytes one key's value takes in the buffer (for per-CPU maps,
    round_up(value_size, 8) * possible CPUs).
    """
    return _map_batches("bpf_map_lookup_and_delete_batch", fd, key_size, value_stride, batch)


def map_lookup_batches(fd: int, key_size: int, value_stride: int,
                       batch: int = 1024) -> Iterator[tuple[bytes, bytes, int]]:
    """Like :func:`map_drain_batches`, but the entries stay in the map."""
    return _map_batches("bpf_map_lookup_batch", fd, key_size, value_stride, batch)


def _map_batches(call: str, fd: int, key_size: int, value_stride: int,
                 batch: int) -> Iterator[tuple[bytes, bytes, int]]:
    """Walk a map with one of libbpf's batch calls (same arguments; ENOENT ends the walk)."""
    batch_call = getattr(libbpf(), call)
    keys = ctypes.create_string_buffer(key_size * batch)
    values = ctypes.create_string_buffer(value_stride * batch)
    in_token = ctypes.create_string_buffer(max(key_size, 8))
    out_token = ctypes.create_string_buffer(max(key_size, 8))
    opts = _BatchOpts(ctypes.sizeof(_BatchOpts), 0, 0)
    first = True
    while True:
        count = ctypes.c_uint32(batch)
        ret = batch_call(fd, None if first else in_token, out_token, keys, values,
                         ctypes.byref(count), ctypes.byref(opts))
        done = ret == -errno.ENOENT
        if ret < 0 and not done:
            _check_int(call, ret)
        if count.value:
            yield keys.raw[: key_size * count.value], values.raw[: value_stride * count.value], \
                count.value
        if done:
            return
        ctypes.memmove(in_token, out_token, len(out_token))
        first = False


def map_delete(fd: int, key: Any) -> bool:
    """Delete one entry; False when it was not there."""
    ret = libbpf().bpf_map_delete_elem(fd, ctypes.byref(key))
    if ret == -errno.ENOENT:
        return False
    _check_int("bpf_map_delete_elem", ret)
    return True


def map_keys(fd: int, key_type: type[ctypes.Structure]) -> list[Any]:
    """Every key of a (hash) map, read one by one."""
    lib = libbpf()
    keys: list[Any] = []
    previous: Any = None
    while True:
        key = key_type()
        ret = lib.bpf_map_get_next_key(fd, None if previous is None else ctypes.byref(previous),
                                       ctypes.byref(key))
        if ret == -errno.ENOENT:
            return keys
        _check_int("bpf_map_get_next_key", ret)
        keys.append(key)
        previous = key


def possible_cpus() -> int:
    return _check_int("libbpf_num_possible_cpus", libbpf().libbpf_num_possible_cpus())


class _ProgInfo(ctypes.Structure):
    # struct bpf_prog_info from <linux/bpf.h>, up to recursion_misses (kernel >= 5.12).
    _fields_ = [
        ("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32), ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64), ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64), ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32), ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * 16), ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32), ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64), ("nr_jited_ksyms", ctypes.c_uint32),
        ("nr_jited_func_lens", ctypes.c_uint32), ("jited_ksyms", ctypes.c_uint64),
        ("jited_func_lens", ctypes.c_uint64), ("btf_id", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64),
        ("nr_func_info", ctypes.c_uint32), ("nr_line_info", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64), ("jited_line_info", ctypes.c_uint64),
        ("nr_jited_line_info", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
        ("jited_line_info_rec_size", ctypes.c_uint32), ("nr_prog_tags", ctypes.c_uint32),
        ("prog_tags", ctypes.c_uint64), ("run_time_ns", ctypes.c_uint64),
        ("run_cnt", ctypes.c_uint64), ("recursion_misses", ctypes.c_uint64),
    ]


def prog_info(fd: int) -> _ProgInfo:
    info = _ProgInfo()
    size = ctypes.c_uint32(ctypes.sizeof(info))
    _check_int("bpf_obj_get_info_by_fd", libbpf().bpf_obj_get_info_by_fd(
        fd, ctypes.byref(info), ctypes.byref(size)))
    return info


class KernelBtf:
    """The running kernel's BTF, to ask which functions and tracepoints exist."""

    def __init__(self) -> None:
        ptr = libbpf().btf__load_vmlinux_btf()
        self._ptr: int | None = _check_ptr("btf__load_vmlinux_btf", ptr)

    def has(self, name: str, kind: int) -> bool:
        return libbpf().btf__find_by_name_kind(self._ptr, name.encode(), kind) >= 0

    def has_function(self, name: str) -> bool:
        return self.has(name, BTF_KIND_FUNC)

    def has_tracepoint(self, name: str) -> bool:
        # Every BTF-enabled tracepoint has a "btf_trace_<name>" typedef.
        return self.has(f"btf_trace_{name}", BTF_KIND_TYPEDEF)

    def close(self) -> None:
        if self._ptr:
            libbpf().btf__free(self._ptr)
            self._ptr = None


class _Insn(ctypes.Structure):
    # struct bpf_insn: opcode, dst_reg:4 src_reg:4, off, imm.
    _fields_ = [("code", ctypes.c_uint8), ("regs", ctypes.c_uint8), ("off", ctypes.c_int16),
                ("imm", ctypes.c_int32)]


BPF_PROG_TYPE_SOCKET_FILTER = 1
_R0, _R1, _R10 = 0, 1, 10
#: r1 = 0; *(u64 *)(r10 - 8) = r1; r1 = 1; r1 = xchg(*(u64 *)(r10 - 8), r1); r0 = 0; exit.
#: 0xdb is BPF_STX | BPF_DW | BPF_ATOMIC; imm 0xe1 is BPF_XCHG (0xe0 | BPF_FETCH).
_ATOMIC_XCHG_PROBE = (
    (0xB7, _R1, 0, 0), (0x7B, _R10 | _R1 << 4, -8, 0), (0xB7, _R1, 0, 1),
    (0xDB, _R10 | _R1 << 4, -8, 0xE1), (0xB7, _R0, 0, 0), (0x95, 0, 0, 0),
)


def probe_atomic_exchange() -> bool:
    """Does the kernel's verifier take BPF atomic exchange (kernel >= 5.12)?

    A six-instruction socket filter that exchanges a stack slot. Kernels without the
    instruction refuse it ("BPF_STX uses reserved fields", EINVAL). Raises LibbpfError when
    the answer is unknown (EPERM: not privileged).
    """
    insns = (_Insn * len(_ATOMIC_XCHG_PROBE))(
        *(_Insn(code, regs, off, imm) for code, regs, off, imm in _ATOMIC_XCHG_PROBE))
    fd = libbpf().bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, b"nw_probe_xchg", b"GPL",
                                ctypes.cast(insns, ctypes.c_void_p), len(insns), None)
    if fd >= 0:
        os.close(fd)
        return True
    if -fd == errno.EINVAL:
        return False
    raise LibbpfError("probe of BPF atomic exchange", fd)
