from __future__ import annotations

from pathlib import Path

import pytest

from netwarden.sensor.containers import (
    ContainerResolver, cgroup_path_from_proc, container_from_cgroup,
)

ID = "3f4e" * 16


@pytest.mark.parametrize("path, expected", [
    ("/", ""),
    ("/user.slice/user-1000.slice/session-2.scope", ""),
    (f"/system.slice/docker-{ID}.scope", "docker:" + ID[:12]),
    (f"/docker/{ID}", "docker:" + ID[:12]),
    (f"/machine.slice/libpod-{ID}.scope/container", "podman:" + ID[:12]),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope",
     "podman:" + ID[:12]),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/"
     f"cri-containerd-{ID}.scope", "containerd:" + ID[:12]),
    (f"/kubepods.slice/kubepods-pod1a2b.slice/crio-{ID}.scope", "cri-o:" + ID[:12]),
    (f"/kubepods/burstable/pod0f1e2d3c-aaaa-bbbb-cccc-111122223333/{ID}", "k8s:" + ID[:12]),
    ("/machine.slice/machine-web\\x2dfront.scope/payload", "nspawn:web-front"),
    ("/lxc.payload.db1/init.scope", "lxc:db1"),
    ("/lxc/db2", "lxc:db2"),
    (f"/lxc.payload.outer/system.slice/docker-{ID}.scope", "docker:" + ID[:12]),  # innermost
])
def test_patterns(path: str, expected: str):
    assert container_from_cgroup(path) == expected


def test_proc_cgroup_prefers_v2_then_systemd():
    assert cgroup_path_from_proc("12:pids:/a\n1:name=systemd:/b\n0::/c\n") == "/c"
    assert cgroup_path_from_proc("12:pids:/a\n1:name=systemd:/b\n") == "/b"
    assert cgroup_path_from_proc("") == ""


def test_resolver_uses_proc_then_cgroup_ids(tmp_path: Path):
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text("0::/machine.slice/machine-box.scope\n")
    root = tmp_path / "cg"
    scope = root / "system.slice" / f"docker-{ID}.scope"
    scope.mkdir(parents=True)
    resolver = ContainerResolver(str(proc), str(root), clock=lambda: 0.0)
    assert resolver.container(7, 0) == "nspawn:box"
    assert resolver.container(8, scope.stat().st_ino) == "docker:" + ID[:12]
    assert resolver.container(8, 123456789) == ""
