#!/usr/bin/env python3
"""The kernel matrix: run netwarden's privileged tests under other Linux kernels.

Boots Debian kernel packages under qemu (software emulation; NW_KMATRIX_ACCEL=kvm to use KVM) with
this machine's root filesystem as the guest's (read-only 9p under a tmpfs overlay) and the
repository shared read-write, runs a pytest selection inside each kernel, and prints a table
kernel x test. The fallback hook sets exist for kernels this machine does not run; this is
how they are proven, not assumed.

    python3 tests/kmatrix/kmatrix.py                     # 5.10, 6.1, 6.12: attribution, doctor, DNS
    python3 tests/kmatrix/kmatrix.py --kernels 6.1 --ci  # what CI runs
    python3 tests/kmatrix/kmatrix.py --kernels 6.1 -- tests/privileged/test_attribution.py -k udp

Needs root and Debian's qemu-system-x86, busybox-static, cpio and kmod (it says so if not).
Kernel packages are downloaded with apt into --cache (default /var/cache/netwarden-kmatrix).
Exit status: 0 when every test passed on every kernel, 1 otherwise, 69 when a kernel could not
be had or booted.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path("/var/cache/netwarden-kmatrix")
DEFAULT_TESTS = ["tests/privileged/test_attribution.py", "tests/privileged/test_doctor.py",
                 "tests/privileged/test_socket_handover.py",
                 "tests/privileged/test_socket_slots.py",
                 "tests/privileged/test_datagram_hook.py",
                 "tests/privileged/test_dns_names.py",
                 "tests/privileged/test_port_scan.py",
                 "tests/privileged/test_sensor_pinning.py"]
#: What CI runs in 6.1 on every change: one attribution test per distinct kernel path
#: (send/recv per family and socket kind, the mmsg, sendfile, splice and io_uring paths,
#: raw, packet, ICMP, short-lived processes, a namespace, partial sends), a socket changing
#: hands by exec and by fork, the socket slots (the build the kernel chose), and the doctor's
#: self-test, and kill -9 of a pinned sensor during traffic. The full set is the default.
CI_SELECTION = ["tests/privileged/test_attribution.py", "tests/privileged/test_doctor.py",
                "tests/privileged/test_socket_handover.py",
                "tests/privileged/test_socket_slots.py",
                "tests/privileged/test_port_scan.py",
                "tests/privileged/test_sensor_pinning.py", "-k",
                "tcp_upload or tcp_download or tcp_ipv6 or udp_upload_unconnected or "
                "udp_download_unconnected or udp_connected or udp_ipv6_download or "
                "sendmmsg or sendfile or splice or io_uring_tcp or icmp or raw_ip or "
                "af_packet or short_lived or own_netns or partial or doctor or "
                "(each_owner and not compat) or (slot and chosen) or "
                "(nmap_scan and sS) or own_connect_scan or kill9_during_traffic"]
#: apt package patterns of each kernel line we know how to fetch (newest match wins).
KERNEL_PACKAGES = {
    "6.1": r"^linux-image-6\.1\.0-\d+-amd64$",
    "6.12": r"^linux-image-6\.12\.\d+\+deb12-amd64$",
    "5.10": r"^linux-image-5\.10\.0-\d+-amd64$",
}
#: Kernel lines this machine's own apt sources (Debian 12) lack: fetched from the Debian
#: suite that ships them, through a private apt state under the cache (the system's apt
#: configuration is not touched). The keyring is the one debian-archive-keyring installs.
EXTRA_SOURCES = {
    "5.10": "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
            "http://deb.debian.org/debian-security bullseye-security main",
}
#: Modules the initramfs loads before the root is mounted.
BOOT_MODULES = ("virtio_pci", "virtio_console", "9pnet_virtio", "9p", "overlay")
#: Modules the tests need in the guest (test networks are veth pairs and bridges).
GUEST_MODULES = ("veth", "bridge")
NEEDED_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static",
                "cpio": "cpio", "modprobe": "kmod", "dpkg-deb": "dpkg"}

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod /modules/$m 2>/dev/null; done
for a in $(cat /proc/cmdline); do
  case $a in nw.work=*) WORK=${a#nw.work=};; nw.modules=*) MODULES=${a#nw.modules=};; esac
done
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower \
  || { echo "nw-kmatrix: cannot mount the host root"; poweroff -f; }
mount -t tmpfs -o size=1g tmpfs /rw; mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
  || { echo "nw-kmatrix: overlay mount failed"; poweroff -f; }
mkdir -p /newroot$WORK
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000 work /newroot$WORK
KVER=$(uname -r)
mkdir -p /newroot/lib/modules/$KVER
mount --bind /newroot$MODULES /newroot/lib/modules/$KVER
mount --move /proc /newroot/proc; mount --move /sys /newroot/sys; mount --move /dev /newroot/dev
mount -t bpf bpf /newroot/sys/fs/bpf
mount -t tracefs tracefs /newroot/sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run; mkdir -p /newroot/run/lock /newroot/run/netns
hostname nw-kmatrix; ip link set lo up
# switch_root, not chroot: a process that unshares its mount namespace (ip netns exec) must
# see the same root as everyone, or /proc/PID/exe paths come out as /newroot/...
exec switch_root /newroot /bin/sh -c "cd $WORK; \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/sh .kmatrix/cmd </dev/console >/dev/console 2>&1; echo \$? > $WORK/.kmatrix/rc; \
  sync; echo o > /proc/sysrq-trigger; sleep 30"
"""


class MatrixError(RuntimeError):
    """A kernel could not be fetched, prepared or booted."""


@dataclass(frozen=True)
class Kernel:
    label: str
    package: str
    directory: Path

    @property
    def image(self) -> Path:
        """The package's bzImage: qemu boots it directly (an ELF vmlinux needs PVH, which
        Debian's 5.10 lacks)."""
        return self.directory / "pkg" / "boot" / f"vmlinuz-{self.release}"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.cpio.gz"

    @property
    def release(self) -> str:
        return (self.directory / "kver").read_text().strip()

    @property
    def modules(self) -> Path:
        return self.directory / "pkg" / "lib" / "modules" / self.release


def run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def check_tools() -> None:
    missing = [pkg for tool, pkg in NEEDED_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise MatrixError("missing tools; install them with: apt-get install -y "
                          + " ".join(sorted(set(missing))))


def apt_options(label: str, cache: Path) -> list[str]:
    """apt's options for ``label``: none (the system's sources), or a private state whose
    only source is EXTRA_SOURCES[label], refreshed once per run."""
    if label not in EXTRA_SOURCES:
        return []
    root = cache / f"apt-{label}"
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(EXTRA_SOURCES[label] + "\n")
    options = ["-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
               "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State={root / 'state'}", "-o", f"Dir::Cache={root / 'cache'}"]
    try:
        run("apt-get", *options, "-q", "update")
    except subprocess.CalledProcessError as exc:
        raise MatrixError(f"cannot read {EXTRA_SOURCES[label]!r}: {exc.stderr.strip()}") \
            from None
    return options


def find_package(label: str, options: list[str]) -> str:
    pattern = re.compile(KERNEL_PACKAGES[label])
    names = run("apt-cache", *options, "pkgnames", "linux-image-").stdout.split()
    matches = [n for n in names if pattern.match(n)]
    if not matches:
        where = EXTRA_SOURCES.get(label, "this machine's apt sources")
        raise MatrixError(f"no {label} kernel package in {where} "
                          f"(pattern {KERNEL_PACKAGES[label]})")
    return max(matches, key=lambda n: [int(x) for x in re.findall(r"\d+", n)])


def build_initrd(kernel: Kernel) -> None:
    with tempfile.TemporaryDirectory(prefix="nw-initrd-") as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "modules"):
            (root / d).mkdir()
        shutil.copy(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        order: list[str] = []
        pkg = kernel.directory / "pkg"
        for module in BOOT_MODULES:
            deps = subprocess.run(["modprobe", "-d", str(pkg), "-S", kernel.release,
                                   "--show-depends", module], capture_output=True, text=True)
            for line in deps.stdout.splitlines():
                parts = line.split()
                if parts[:1] != ["insmod"]:
                    continue          # built in
                source = Path(parts[1])
                name = source.name
                for suffix, tool in ((".xz", ["xz", "-dc"]), (".zst", ["zstd", "-dc"])):
                    if name.endswith(suffix):
                        name = name[: -len(suffix)]
                        (root / "modules" / name).write_bytes(
                            subprocess.run(tool + [str(source)], check=True,
                                           capture_output=True).stdout)
                        break
                else:
                    shutil.copy(source, root / "modules" / name)
                if name not in order:
                    order.append(name)
        (root / "modules.order").write_text("\n".join(order) + "\n")
        (root / "init").write_text(INIT)
        (root / "init").chmod(0o755)
        archive = subprocess.run("find . | cpio -o -H newc --quiet", shell=True, cwd=root,
                                 check=True, capture_output=True).stdout
        kernel.initrd.write_bytes(gzip.compress(archive, compresslevel=1))


def prepare(label: str, cache: Path) -> Kernel:
    """Fetch and unpack a kernel package once; later runs reuse the cache."""
    options = apt_options(label, cache)
    package = find_package(label, options)
    directory = cache / package
    kernel = Kernel(label, package, directory)
    if kernel.initrd.exists() and (directory / "kver").exists() and kernel.image.exists():
        return kernel
    directory.mkdir(parents=True, exist_ok=True)
    debs = list(directory.glob("*.deb"))
    if not debs:
        run("apt-get", *options, "download", "-q", package, cwd=directory)
        debs = list(directory.glob("*.deb"))
    shutil.rmtree(directory / "pkg", ignore_errors=True)
    run("dpkg-deb", "-x", str(debs[0]), str(directory / "pkg"))
    release = next((directory / "pkg" / "lib" / "modules").iterdir()).name
    (directory / "kver").write_text(release + "\n")
    run("depmod", "-b", str(directory / "pkg"), release)
    build_initrd(kernel)
    return kernel


def boot(kernel: Kernel, workdir: Path, command: str, timeout_s: int,
         console: Path) -> int:
    """Run ``command`` (shell) in the guest with ``workdir`` as its working directory."""
    state = workdir / ".kmatrix"
    state.mkdir(exist_ok=True)
    (state / "rc").unlink(missing_ok=True)
    (state / "cmd").write_text(command + "\n")
    # Software emulation by default: /dev/kvm may exist and still not work (a nested VM).
    accel = os.environ.get("NW_KMATRIX_ACCEL", "tcg")
    args = ["qemu-system-x86_64", "-machine", f"q35,accel={accel}", "-cpu", "max",
            "-smp", os.environ.get("NW_KMATRIX_SMP", "2"),
            "-m", os.environ.get("NW_KMATRIX_MEM", "3G"),
            "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
            "-kernel", str(kernel.image), "-initrd", str(kernel.initrd),
            "-append", f"console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init "
                       f"nw.work={workdir} nw.modules={kernel.modules}",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap",
            "-virtfs", f"local,path={workdir},mount_tag=work,security_model=none,"
                       "multidevs=remap"]
    with open(console, "w") as log:
        try:
            subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s,
                           check=False)
        except subprocess.TimeoutExpired:
            raise MatrixError(f"{kernel.label}: no result within {timeout_s} s "
                              f"(console: {console})") from None
    if not (state / "rc").exists():
        raise MatrixError(f"{kernel.label}: the guest gave no exit status (console: {console})")
    return int((state / "rc").read_text())


@dataclass
class Outcome:
    kernel: str
    release: str
    results: dict[str, str] = field(default_factory=dict)   # test id -> passed/failed/...
    seconds: float = 0.0
    error: str = ""


def read_junit(path: Path) -> dict[str, str]:
    results: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            results[name] = "FAIL"
        elif case.find("skipped") is not None:
            results[name] = "skip"
        else:
            results[name] = "pass"
    return results


def run_kernel(label: str, cache: Path, pytest_args: list[str], timeout_s: int,
               python: str) -> Outcome:
    kernel = prepare(label, cache)
    outcome = Outcome(label, kernel.release)
    results = REPO / ".kmatrix" / f"{label}.xml"
    results.parent.mkdir(exist_ok=True)
    results.unlink(missing_ok=True)
    quoted = " ".join(f"'{a}'" for a in pytest_args)
    # The kernel's own module loader runs /sbin/modprobe in the initramfs, which has no
    # modules tree: load what the tests' networks need from the guest root first.
    command = (f"modprobe -a {' '.join(GUEST_MODULES)} && "
               f"NETWARDEN_STRICT=1 NETWARDEN_KMATRIX={label} {python} -m pytest -q "
               f"-p no:cacheprovider --junitxml={results} {quoted} "
               f"> .kmatrix/{label}.log 2>&1")
    started = time.monotonic()
    boot(kernel, REPO, command, timeout_s, REPO / ".kmatrix" / f"{label}.console")
    outcome.seconds = time.monotonic() - started
    if not results.exists():
        raise MatrixError(f"{label}: pytest wrote no results (see .kmatrix/{label}.log)")
    outcome.results = read_junit(results)
    return outcome


def table(outcomes: list[Outcome]) -> str:
    tests = sorted({t for o in outcomes for t in o.results})
    width = max([len(t) for t in tests] + [4])
    header = f"{'test':{width}}  " + "  ".join(f"{o.kernel:>8}" for o in outcomes)
    lines = [header, "-" * len(header)]
    for test in tests:
        lines.append(f"{test:{width}}  " + "  ".join(
            f"{o.results.get(test, '-'):>8}" for o in outcomes))
    lines.append("-" * len(header))
    lines.append(f"{'kernel release':{width}}  " + "  ".join(f"{o.release[:8]:>8}"
                                                            for o in outcomes))
    lines.append(f"{'passed / total':{width}}  " + "  ".join(
        f"{sum(r == 'pass' for r in o.results.values()):>4}/{len(o.results):<3}"
        for o in outcomes))
    lines.append(f"{'minutes':{width}}  " + "  ".join(f"{o.seconds / 60:>8.1f}"
                                                     for o in outcomes))
    return "\n".join(lines)


def default_python() -> str:
    """The test suite's own environment: a system Python lacks its packages (dnspython, ...),
    and tests that cannot import them error in the guest rather than test anything."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", default="5.10,6.1,6.12",
                        help=f"comma-separated, of: {', '.join(KERNEL_PACKAGES)}")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per kernel")
    parser.add_argument("--python", default=default_python(),
                        help="the Python (with pytest and the test suite's packages) to run "
                             "inside the guests; default: the repository's .venv (made by "
                             "scripts/bootstrap test) if there is one, else this Python")
    parser.add_argument("--ci", action="store_true",
                        help="run CI's selection (one test per kernel path) instead of all")
    parser.add_argument("pytest_args", nargs="*", default=DEFAULT_TESTS,
                        help="what pytest runs in each kernel (after --)")
    args = parser.parse_args(argv)
    if args.ci:
        args.pytest_args = CI_SELECTION
    if os.geteuid() != 0:
        print("kmatrix: needs root (qemu with the host root, BPF in the guest)", file=sys.stderr)
        return 77
    labels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in labels if k not in KERNEL_PACKAGES]
    if unknown:
        print(f"kmatrix: unknown kernel {unknown}; known: {', '.join(KERNEL_PACKAGES)}",
              file=sys.stderr)
        return 64
    try:
        check_tools()
        outcomes = [run_kernel(label, args.cache, args.pytest_args, args.timeout, args.python)
                    for label in labels]
    except MatrixError as exc:
        print(f"kmatrix: {exc}", file=sys.stderr)
        return 69
    print(table(outcomes))
    return 0 if all(r == "pass" for o in outcomes for r in o.results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
