"""Open, configure, load and attach the BPF objects named in :mod:`netwarden.sensor.hooks`.

An optional program that fails to load or attach is reported and left out; the rest of its
object loads without it. A required program (a byte hook) that fails makes the loader try the
next hook set; only when no set works does loading fail, with every reason collected.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from netwarden.sensor import libbpf as lb
from netwarden.sensor.pinning import PinPlace, object_version, prune_empty, remove_pinned
from netwarden.sensor.hooks import (
    PROBED_FUNCTIONS, AttachKind, BpfMode, HookChoice, HookSet, KernelFeatures, ObjectSpec,
    PacketHookPlan, ProgramSpec, missing_for,
)

log = logging.getLogger(__name__)

_FAILED_PROG = re.compile(r"prog '([^']+)': failed to load")


class ProgramState(enum.Enum):
    ATTACHED = "attached"
    NOT_SELECTED = "not selected"      # belongs to a hook set that was not chosen
    KERNEL_LACKS = "kernel lacks"      # a tracepoint or function it needs is absent
    LOAD_FAILED = "load failed"
    ATTACH_FAILED = "attach failed"
    ON_DEMAND = "loaded, attached on demand"   # the sensor attaches it while it is needed


@dataclass(frozen=True)
class ProgramStatus:
    object_name: str
    program: str
    state: ProgramState
    required: bool
    detail: str = ""

    @property
    def is_failure(self) -> bool:
        return self.state in (ProgramState.LOAD_FAILED, ProgramState.ATTACH_FAILED,
                              ProgramState.KERNEL_LACKS)


class LoadFailure(RuntimeError):
    """A required object could not be loaded with any hook set."""

    def __init__(self, object_name: str, reasons: list[str]) -> None:
        super().__init__(f"cannot load BPF object {object_name!r}: " + "; ".join(reasons))
        self.reasons = reasons


@dataclass
class LoadedObject:
    spec: ObjectSpec
    obj: lb.BpfObject
    links: list[lb.Link]
    statuses: list[ProgramStatus]
    hook_set: HookSet | None
    cgroup_root: str | None = None
    #: The BPF mode it was loaded in (None: the object has no compat switch).
    bpf_mode: BpfMode | None = None
    #: Where its maps and links are pinned (None: not pinned; they go with the process).
    pin_dir: Path | None = None
    #: Programs found still attached through links an earlier sensor pinned (kept as is).
    kept_links: tuple[str, ...] = ()
    #: Pinned sets of other versions this load replaced (what they held was not read).
    replaced: tuple[str, ...] = ()

    def map(self, name: str) -> lb.Map:
        if name not in self.spec.maps:
            raise KeyError(f"map {name!r} is not in the registry of {self.spec.name!r}")
        return self.obj.map(name)

    def is_attached(self, program: str) -> bool:
        return any(s.program == program and s.state is ProgramState.ATTACHED
                   for s in self.statuses)

    def link(self, program: str) -> lb.Link:
        for link in self.links:
            if link.name == program:
                return link
        raise KeyError(f"{program} is not attached")

    def attached_programs(self) -> list[lb.Program]:
        """Programs attached at load, and those loaded to be attached on demand."""
        return [self.obj.program(s.program) for s in self.statuses
                if s.state in (ProgramState.ATTACHED, ProgramState.ON_DEMAND)]

    def is_on_demand(self, program: str) -> bool:
        return any(s.program == program and s.state is ProgramState.ON_DEMAND
                   for s in self.statuses)

    def is_linked(self, program: str) -> bool:
        """Attached right now (at load, or on demand)."""
        return any(link.name == program for link in self.links)

    def attach_on_demand(self, program: str) -> None:
        """Attach a program loaded for attaching on demand (no-op when it is attached)."""
        if not self.is_on_demand(program):
            raise KeyError(f"{program} is not an on-demand program of {self.spec.name!r}")
        if not self.is_linked(program):
            self.links.append(self.obj.program(program).attach())

    def detach_on_demand(self, program: str) -> None:
        for link in [link for link in self.links if link.name == program]:
            link.destroy()
            self.links.remove(link)

    def detach(self, keep: frozenset[str] = frozenset()) -> None:
        """Detach every program but those named in ``keep`` (the maps stay loaded); pinned
        links are unpinned first, or they would stay attached."""
        for link in self.links:
            if link.name not in keep:
                link.unpin()
                link.destroy()
        self.links = [link for link in self.links if link.name in keep]

    def release(self) -> None:
        """Close this process's handles but leave the pinned links attached and the pinned
        maps counting, for the next sensor (``--keep-pinned``)."""
        for link in self.links:
            link.destroy()  # closes this process's fd: only an unpinned link detaches
        self.links = []
        self.obj.close()

    def unpin(self) -> None:
        """Remove the pinned set (after :meth:`close`: links are gone, maps are unpinned)."""
        if self.pin_dir is not None:
            remove_pinned(self.pin_dir)
            try:
                os.rmdir(self.pin_dir.parent)  # the store's directory, once it is empty
            except OSError:
                pass

    def reattach(self) -> None:
        """Attach again what was attached before :meth:`detach`."""
        linked = {link.name for link in self.links}
        programs = [p for p in self.spec.programs + (self.hook_set.programs if self.hook_set
                                                     else ())
                    if self.is_attached(p.name) and p.name not in linked]
        links, statuses = attach_programs(self.spec, self.obj, programs, self.cgroup_root)
        self.links += links
        failed = [s for s in statuses.values() if s.is_failure]
        if failed:
            raise OSError(f"re-attaching {failed[0].program}: {failed[0].detail}")

    def close(self) -> None:
        self.detach()
        self.obj.close()
        self.unpin()


@dataclass(frozen=True)
class ObjectConfig:
    """What the loader sets between open and load."""

    rodata: dict[str, int | tuple[int, ...]] = field(default_factory=dict)
    map_entries: dict[str, int] = field(default_factory=dict)
    #: Programs the configuration leaves out (not loaded), with why.
    leave_out: dict[str, str] = field(default_factory=dict)


def object_path(filename: str) -> Path:
    """Where the packaged object lives (built by bpf/Makefile at package build time)."""
    return Path(str(resources.files("netwarden.sensor") / "bpf_objects" / filename))


def cgroup2_root(proc_root: str = "/proc") -> str:
    """The cgroup2 mount point (``/sys/fs/cgroup`` on most systems, elsewhere on hybrids)."""
    with open(os.path.join(proc_root, "mounts"), encoding="utf-8") as mounts:
        for line in mounts:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return parts[1]
    raise FileNotFoundError("no cgroup2 filesystem is mounted (see /proc/mounts)")


#: Without a plan every program runs as it did before plans existed: per-packet hooks
#: loaded and attached for the sensor's lifetime.
ALWAYS_PACKET_HOOKS = PacketHookPlan(False, False, "no packet-hook plan given")


class Loader:
    def __init__(self, features: KernelFeatures, cgroup_root: str | None,
                 objects_dir: Path | None = None, mode: BpfMode | None = None,
                 packet_hooks: PacketHookPlan = ALWAYS_PACKET_HOOKS,
                 pins: PinPlace | None = None,
                 pinned_objects: frozenset[str] = frozenset({"net"})) -> None:
        self._pins = pins
        self._pinned_objects = pinned_objects
        self._features = features
        self._cgroup_root = cgroup_root
        self._objects_dir = objects_dir
        self._mode = mode if mode is not None else BpfMode(False, "full by default")
        self._packet_hooks = packet_hooks

    def _path(self, spec: ObjectSpec) -> str:
        filename = spec.filename_for(self._mode)
        if self._objects_dir is not None:
            return str(self._objects_dir / filename)
        return str(object_path(filename))

    def load(self, spec: ObjectSpec, config: ObjectConfig,
             choice: HookChoice | None = None) -> LoadedObject:
        """Load one object, trying each candidate hook set in turn."""
        candidates: tuple[HookSet | None, ...] = (None,)
        if spec.hook_sets:
            if choice is None or not choice.candidates:
                reasons = choice.explain() if choice else ["no hook set was chosen"]
                raise LoadFailure(spec.name, reasons)
            candidates = choice.candidates
        reasons: list[str] = []
        for hook_set in candidates:
            try:
                return self._load_with(spec, config, hook_set)
            except _HookSetFailed as exc:
                reasons.append(str(exc))
                log.warning("%s: hook set %s failed: %s", spec.name,
                            hook_set.name if hook_set else "-", exc)
        raise LoadFailure(spec.name, reasons)

    def _load_with(self, spec: ObjectSpec, config: ObjectConfig,
                   hook_set: HookSet | None) -> LoadedObject:
        statuses: dict[str, ProgramStatus] = {}
        wanted = list(spec.programs) + (list(hook_set.programs) if hook_set else [])
        for other in spec.hook_sets:
            if other is not hook_set:
                for program in other.programs:
                    statuses[program.name] = ProgramStatus(
                        spec.name, program.name, ProgramState.NOT_SELECTED, False)
        for program in wanted:
            not_selected = self._not_selected(spec, program)
            if program.name in config.leave_out:
                not_selected = config.leave_out[program.name]
            missing = missing_for(program, self._features)
            if not_selected:
                statuses[program.name] = ProgramStatus(
                    spec.name, program.name, ProgramState.NOT_SELECTED, False, not_selected)
            elif missing:
                statuses[program.name] = ProgramStatus(
                    spec.name, program.name, ProgramState.KERNEL_LACKS, program.required,
                    "kernel lacks " + ", ".join(missing))
            elif program.on_demand and self._packet_hooks.on_demand:
                statuses[program.name] = ProgramStatus(
                    spec.name, program.name, ProgramState.ON_DEMAND, False)
        if hook_set is not None:
            config = ObjectConfig(
                rodata={**config.rodata, "preemptible_hooks": int(hook_set.preemptible),
                        "syscall_args": int(self._packet_hooks.syscall_args)},
                map_entries=config.map_entries, leave_out=config.leave_out)
        pin_dir = self._pin_dir(spec, config, hook_set)
        try:
            return self._load_attempt(spec, config, hook_set, statuses, wanted, pin_dir)
        except _HookSetFailed:
            if pin_dir is not None:
                prune_empty(pin_dir)
            raise

    def _load_attempt(self, spec: ObjectSpec, config: ObjectConfig, hook_set: HookSet | None,
                     statuses: dict[str, ProgramStatus], wanted: list[ProgramSpec],
                     pin_dir: Path | None) -> LoadedObject:
        while True:
            failed = self._try_load(spec, config, statuses, pin_dir)
            if isinstance(failed, lb.BpfObject):
                obj = failed
                break
            program = next((p for p in wanted if p.name == failed.program), None)
            statuses[failed.program] = failed
            if program is None or program.required:
                raise _HookSetFailed(f"{failed.program}: {failed.detail}")
        links, attach_statuses = attach_programs(spec, obj, [p for p in wanted
                                                              if p.name not in statuses],
                                                 self._cgroup_root,
                                                 pin_dir / "links" if pin_dir else None)
        statuses.update(attach_statuses)
        broken = [s for s in attach_statuses.values() if s.required and s.is_failure]
        if broken:
            for link in links:
                link.unpin()
                link.destroy()
            obj.close()
            if pin_dir is not None and not any(link.kept for link in links):
                remove_pinned(pin_dir)  # nothing an earlier sensor left: no set to keep
            raise _HookSetFailed("; ".join(f"{s.program}: {s.detail}" for s in broken))
        ordered = [statuses[name] for name in spec.all_program_names() if name in statuses]
        replaced: list[str] = []
        if pin_dir is not None and self._pins is not None:
            # Ours is attached: now the other versions go (their programs detach; what
            # their maps held since their last commit is lost, and reported by the sensor).
            for other in self._pins.versions(spec.name):
                if other != pin_dir:
                    remove_pinned(other)
                    replaced.append(other.name)
        return LoadedObject(spec, obj, links, ordered, hook_set, self._cgroup_root,
                            self._mode if spec.compat_filename else None, pin_dir=pin_dir,
                            kept_links=tuple(link.name for link in links if link.kept),
                            replaced=tuple(replaced))

    def _pin_dir(self, spec: ObjectSpec, config: ObjectConfig,
                 hook_set: HookSet | None) -> Path | None:
        if self._pins is None or spec.name not in self._pinned_objects:
            return None
        settings = repr((sorted(config.rodata.items()), sorted(config.map_entries.items()),
                         hook_set.name if hook_set else "", self._mode.compat,
                         self._packet_hooks.syscall_args, self._packet_hooks.on_demand))
        return self._pins.directory(spec.name, object_version(self._path(spec), settings))

    def _not_selected(self, spec: ObjectSpec, program: ProgramSpec) -> str:
        """Why this plan leaves the program out ("" when it does not)."""
        compat = bool(spec.compat_filename) and self._mode.compat
        if program.full_mode_only and compat:
            return "not in compat BPF mode"
        if program.compat_mode_only and spec.compat_filename and not compat:
            return "only in compat BPF mode"
        if program.syscall_args is not None and \
                program.syscall_args != self._packet_hooks.syscall_args:
            return ("not needed: the hooks read system call arguments"
                    if self._packet_hooks.syscall_args
                    else "needs the hooks to read system call arguments")
        return ""

    def _try_load(self, spec: ObjectSpec, config: ObjectConfig,
                  statuses: dict[str, ProgramStatus],
                  pin_dir: Path | None = None) -> lb.BpfObject | ProgramStatus:
        """One open+load attempt with the programs in ``statuses`` left out.

        Returns the loaded object, or the status of the program that failed (the object is
        closed; the caller leaves that program out and tries again).
        """
        obj = lb.BpfObject(self._path(spec))
        with ExitStack() as cleanup:
            cleanup.callback(obj.close)
            # The registry is checked against the object: a missing name fails here, loudly.
            for name in spec.all_program_names():
                status = statuses.get(name)
                obj.program(name).set_autoload(
                    status is None or status.state is ProgramState.ON_DEMAND)
            for name in spec.maps:
                obj.map(name)
            if config.rodata:
                obj.set_rodata(config.rodata)
            for map_name, entries in config.map_entries.items():
                obj.map(map_name).set_max_entries(entries)
            if pin_dir is not None:
                # libbpf reuses a map pinned there (an earlier sensor's, still holding its
                # counts) or pins the one it creates; a failed load unpins what it pinned.
                # bpffs refuses names with dots (reserved): "net.rodata" is "net_rodata".
                os.makedirs(pin_dir / "maps", exist_ok=True)
                for bpf_map in obj.maps():
                    bpf_map.set_pin_path(str(pin_dir / "maps" / bpf_map.name.replace(".", "_")))
            try:
                obj.load()
            except lb.LoadError as exc:
                return self._failed_program(spec, exc)
            cleanup.pop_all()
        return obj

    @staticmethod
    def _failed_program(spec: ObjectSpec, exc: lb.LoadError) -> ProgramStatus:
        names = [m.group(1) for line in exc.log for m in _FAILED_PROG.finditer(line)]
        if not names:
            raise _HookSetFailed(f"{exc} ({' | '.join(exc.log[-3:])})") from exc
        name = names[-1]
        # The verifier's verdict is the last line before libbpf's own summary lines.
        verdict = _verifier_verdict(exc.log) or str(exc)
        required = name in {p.name for s in spec.hook_sets for p in s.programs}
        return ProgramStatus(spec.name, name, ProgramState.LOAD_FAILED, required, verdict)

def attach_programs(spec: ObjectSpec, obj: lb.BpfObject, programs: list[ProgramSpec],
                    cgroup_root: str | None, links_dir: Path | None = None,
                    ) -> tuple[list[lb.Link], dict[str, ProgramStatus]]:
    """Attach each program its own way; a failure is a status, not an exception.

    With ``links_dir``, a link pinned there by an earlier sensor (same version: same
    program, same maps) is kept as it is, so counting never stopped; a new one is pinned.
    """
    links: list[lb.Link] = []
    statuses: dict[str, ProgramStatus] = {}
    cgroup_fd = -1
    if links_dir is not None:
        os.makedirs(links_dir, exist_ok=True)
    try:
        for program in programs:
            try:
                pinned = links_dir / program.name if links_dir else None
                if pinned is not None and pinned.exists():
                    links.append(lb.Link.open_pinned(str(pinned), program.name))
                    links[-1].kept = True
                elif program.attach is AttachKind.CGROUP:
                    if cgroup_fd < 0:
                        if cgroup_root is None:
                            raise FileNotFoundError("no cgroup2 mount")
                        cgroup_fd = os.open(cgroup_root, os.O_RDONLY | os.O_DIRECTORY)
                    links.append(obj.program(program.name).attach_cgroup(cgroup_fd))
                else:
                    links.append(obj.program(program.name).attach())
                if pinned is not None and not links[-1].pinned:
                    links[-1].pin(str(pinned))
                state, detail = ProgramState.ATTACHED, ""
            except OSError as exc:
                state, detail = ProgramState.ATTACH_FAILED, str(exc)
            statuses[program.name] = ProgramStatus(spec.name, program.name, state,
                                                   program.required, detail)
    finally:
        if cgroup_fd >= 0:
            os.close(cgroup_fd)
    return links, statuses


class _HookSetFailed(Exception):
    pass


def _verifier_verdict(log_lines: list[str]) -> str:
    for line in log_lines:
        if "-- END PROG LOAD LOG --" in line:
            body = [ln for ln in line.split("\n") if ln.strip()]
            # ... "<verdict>", "processed N insns ...", "-- END PROG LOAD LOG --"
            tail = [ln for ln in body if not ln.startswith(("processed ", "-- END"))]
            if tail:
                return tail[-1].strip()
            return "the kernel refused the program (empty verifier log)"
    return ""


def kernel_features(objects: tuple[ObjectSpec, ...]) -> KernelFeatures:
    """Ask the running kernel's BTF about every name the registry needs, then free it, and
    probe whether its verifier takes BPF atomic exchange (see :class:`hooks.BpfMode`).

    The parsed kernel BTF takes several MB; the sensor keeps only the answers.
    """
    programs = [p for spec in objects for p in spec.programs]
    programs += [p for spec in objects for s in spec.hook_sets for p in s.programs]
    btf = lb.KernelBtf()
    try:
        tracepoints = {t for p in programs for t in p.needs_tracepoints if btf.has_tracepoint(t)}
        functions = {f for p in programs for f in p.needs_functions if btf.has_function(f)}
        functions |= {f for f in PROBED_FUNCTIONS if btf.has_function(f)}
    finally:
        btf.close()
    try:
        atomic_exchange: bool | None = lb.probe_atomic_exchange()
    except lb.LibbpfError as exc:
        log.info("cannot probe BPF atomic exchange: %s", exc)
        atomic_exchange = None
    return KernelFeatures.from_names(tracepoints, functions, atomic_exchange)
