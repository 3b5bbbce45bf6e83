"""net_compat.bpf.o holds nothing kernels before 5.12 refuse before they even run it.

5.10's verifier checks every instruction's encoding before it explores a program, so one
atomic exchange (or an atomic OR that LLVM made of an add of 0) anywhere fails the whole
program, even on a path that never runs. The kernel matrix finds that under qemu in minutes;
this reads the built object the same way in milliseconds, on a host whose kernel takes all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from netwarden.sensor.hooks import NET_OBJECT
from netwarden.sensor.loader import object_path

SHF_EXECINSTR = 0x4
BPF_STX, BPF_ATOMIC, BPF_CALL, BPF_LD_IMM64 = 0x03, 0xC0, 0x85, 0x18
#: Helpers the compat build must not call: bpf_get_current_task_btf (5.11) anywhere;
#: bpf_sk_storage_get/delete (5.11) and bpf_get_socket_cookie (5.12) from tracing programs.
TASK_BTF, SK_STORAGE_GET, SK_STORAGE_DELETE, SOCKET_COOKIE = 158, 107, 108, 46
TRACING_SECTIONS = ("fexit/", "fentry/", "tp_btf/", "iter/")


@dataclass(frozen=True)
class Refused:
    section: str
    index: int
    why: str


def program_sections(obj: Path) -> dict[str, bytes]:
    """Name -> bytes of every executable section of a 64-bit little-endian ELF object."""
    data = obj.read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]

    def name(offset: int) -> str:
        end = data.index(b"\0", names_at + offset)
        return data[names_at + offset:end].decode()
    return {name(h[0]): data[h[4]:h[4] + h[5]] for h in headers if h[2] & SHF_EXECINSTR}


def refused_before_5_12(obj: Path) -> list[Refused]:
    refused = []
    for section, code in program_sections(obj).items():
        tracing = section.startswith(TRACING_SECTIONS)
        skip = False
        for index in range(len(code) // 8):
            if skip:                      # the second half of a 16-byte ld_imm64
                skip = False
                continue
            opcode, regs, _off, imm = struct.unpack_from("<BBhi", code, index * 8)
            skip = opcode == BPF_LD_IMM64
            if opcode & 0x07 == BPF_STX and opcode & 0xE0 == BPF_ATOMIC and imm != 0:
                refused.append(Refused(section, index, f"atomic operation {imm:#x}"))
            elif opcode == BPF_CALL and regs >> 4 == 0 and (     # a helper, not a subprogram
                    imm == TASK_BTF
                    or (tracing and imm in (SK_STORAGE_GET, SK_STORAGE_DELETE, SOCKET_COOKIE))):
                refused.append(Refused(section, index, f"helper {imm}"))
    return refused


def test_the_compat_build_has_nothing_5_10_refuses():
    assert refused_before_5_12(object_path(NET_OBJECT.compat_filename)) == []


def test_the_scan_finds_what_the_full_build_uses():
    """The full build takes epochs out by exchange and calls the 5.11/5.12 helpers."""
    whys = {r.why for r in refused_before_5_12(object_path(NET_OBJECT.filename))}
    assert "atomic operation 0xe1" in whys                   # exchange (BPF_XCHG | BPF_FETCH)
    assert {f"helper {h}" for h in (TASK_BTF, SK_STORAGE_GET, SOCKET_COOKIE)} <= whys
