"""events.h and its one Python mirror (bpf_records.py) must describe the same bytes."""

from __future__ import annotations

import ctypes

import pytest

from netwarden.sensor import bpf_records
from netwarden.sensor.hooks import NET_OBJECT, OBJECTS
from netwarden.sensor.loader import object_path
from tests.contract.btf_layout import btf_layout, ctypes_layout, differences

#: Which objects carry which shared struct in their BTF (each is anchored by a global).
CARRIERS = {"flow_key": ("net.bpf.o",), "flow_value": ("net.bpf.o",),
            "nw_control": ("net.bpf.o",), "flow_record": ("net.bpf.o",),
            "proc_event": ("exec.bpf.o",), "dns_event": ("dns.bpf.o", "net.bpf.o"),
            "datagram_notice": ("net.bpf.o",), "sock_slot": ("net.bpf.o",),
            "scan_probe": ("scan.bpf.o",),
            "carry_key": ("net.bpf.o",), "carry_value": ("net.bpf.o",)}


def test_every_mirrored_struct_has_a_carrier():
    assert set(CARRIERS) == set(bpf_records.MIRRORED_STRUCTS)
    assert {f for files in CARRIERS.values() for f in files} <= \
        {spec.filename for spec in OBJECTS}


@pytest.mark.parametrize("struct,carrier", sorted((s, f) for s, files in CARRIERS.items()
                                                  for f in files))
def test_mirror_matches_btf(struct: str, carrier: str):
    btf = btf_layout(object_path(carrier), struct)
    mirror = ctypes_layout(bpf_records.MIRRORED_STRUCTS[struct])
    assert differences(btf, mirror) == []


@pytest.mark.parametrize("struct", sorted(s for s, files in CARRIERS.items()
                                          if NET_OBJECT.filename in files))
def test_the_compat_build_carries_the_same_layout(struct: str):
    """net_compat.bpf.o (kernels before 5.12) is read by the same mirror."""
    btf = btf_layout(object_path(NET_OBJECT.compat_filename), struct)
    assert differences(btf, ctypes_layout(bpf_records.MIRRORED_STRUCTS[struct])) == []


def test_a_drifted_mirror_is_caught():
    """Swap two fields of the Python mirror: the comparison must notice."""
    fields = list(bpf_records.FlowValue._fields_)
    fields[4], fields[5] = fields[5], fields[4]             # exe_dev <-> uid: same size
    fields[0], fields[2] = fields[2], fields[0]             # sent_bytes <-> exe_ino
    drifted = type("DriftedFlowValue", (ctypes.Structure,), {"_fields_": fields})
    btf = btf_layout(object_path("net.bpf.o"), "flow_value")
    assert differences(btf, ctypes_layout(drifted)) != []
    shorter = type("ShortFlowKey", (ctypes.Structure,),
                   {"_fields_": bpf_records.FlowKey._fields_[:-1]})
    assert differences(btf_layout(object_path("net.bpf.o"), "flow_key"),
                       ctypes_layout(shorter)) != []
