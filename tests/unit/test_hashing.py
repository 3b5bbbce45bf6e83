from __future__ import annotations

import hashlib
import os
from pathlib import Path

from netwarden.sensor.hashing import HashCache


def test_hash_is_cached_and_refreshed_when_the_file_changes(tmp_path: Path):
    f = tmp_path / "prog"
    f.write_bytes(b"v1" * 1000)
    st = os.stat(f)
    cache = HashCache()
    first = cache.sha256(st.st_dev, st.st_ino, [str(f)])
    assert first == hashlib.sha256(b"v1" * 1000).hexdigest()
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)]) == first
    assert cache.hashed_files == 1
    with open(f, "ab") as handle:        # modified in place: same inode, new size and mtime
        handle.write(b"tail")
    second = cache.sha256(st.st_dev, st.st_ino, [str(f)])
    assert second == hashlib.sha256(b"v1" * 1000 + b"tail").hexdigest()
    assert cache.hashed_files == 2


def test_a_candidate_that_is_another_file_is_not_believed(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    st = os.stat(a)
    cache = HashCache()
    assert cache.sha256(st.st_dev, st.st_ino, [str(b)]) == ""
    assert cache.sha256(st.st_dev, st.st_ino, [str(b), str(a)]) == hashlib.sha256(b"a").hexdigest()
    os.unlink(a)                          # gone: the last known hash stands
    assert cache.sha256(st.st_dev, st.st_ino, [str(a)]) == hashlib.sha256(b"a").hexdigest()


def test_prefetch_worker(tmp_path: Path):
    f = tmp_path / "p"
    f.write_bytes(b"x")
    st = os.stat(f)
    cache = HashCache(prefetch_queue=1)
    cache.prefetch(st.st_dev, st.st_ino, [str(f)])
    cache.prefetch(st.st_dev, st.st_ino, [str(f)])   # the queue holds one: dropped, counted
    assert cache.prefetch_dropped == 1
    cache.start()
    cache.stop()
    assert cache.cached(st.st_dev, st.st_ino) == hashlib.sha256(b"x").hexdigest()


def test_a_reloaded_cache_is_trusted_only_while_the_file_is_unchanged(tmp_path: Path):
    f = tmp_path / "prog"
    f.write_bytes(b"v1")
    st = os.stat(f)
    first = HashCache()
    sha = first.sha256(st.st_dev, st.st_ino, [str(f)])
    records = first.take_dirty()
    assert [r.sha256 for r in records] == [sha] and first.take_dirty() == []
    reloaded = HashCache()
    assert reloaded.load(records) == 1
    assert reloaded.sha256(st.st_dev, st.st_ino, [str(f)]) == sha
    assert reloaded.hashed_files == 0                 # unchanged: not hashed again
    f.write_bytes(b"v2!")                             # changed while "down"
    assert reloaded.sha256(st.st_dev, st.st_ino, [str(f)]) == hashlib.sha256(b"v2!").hexdigest()
    assert reloaded.hashed_files == 1


def test_invalidate_forces_a_new_hash_and_reports_it(tmp_path: Path):
    f = tmp_path / "prog"
    f.write_bytes(b"same")
    st = os.stat(f)
    hashed = []
    cache = HashCache(on_hashed=lambda dev, ino, path: hashed.append(path))
    cache.sha256(st.st_dev, st.st_ino, [str(f)])
    cache.invalidate(st.st_dev, st.st_ino)
    cache.sha256(st.st_dev, st.st_ino, [str(f)])
    assert cache.hashed_files == 2 and hashed == [str(f), str(f)]


def test_each_version_keeps_its_hash_and_an_unhashed_change_is_said(tmp_path: Path):
    from netwarden.sensor.fileid import version_of
    from netwarden.sensor.hashing import CHANGED_BEFORE_HASHED
    f = tmp_path / "prog"
    f.write_bytes(b"v1")
    st = os.stat(f)
    v1 = version_of(st.st_dev, st.st_ino, [str(f)])
    cache = HashCache()
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)], v1) == hashlib.sha256(b"v1").hexdigest()
    with open(f, "ab") as handle:
        handle.write(b"+v2")
    v2 = version_of(st.st_dev, st.st_ino, [str(f)])
    assert v2 != v1
    # The run of version 1 keeps its hash after the change; version 2 gets its own.
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)], v2) == \
        hashlib.sha256(b"v1+v2").hexdigest()
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)], v1) == hashlib.sha256(b"v1").hexdigest()
    # A version seen running but changed before anyone hashed it: no hash of another one.
    with open(f, "ab") as handle:
        handle.write(b"+v3")
    v3 = version_of(st.st_dev, st.st_ino, [str(f)])
    with open(f, "ab") as handle:
        handle.write(b"+v4")
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)], v3) == CHANGED_BEFORE_HASHED
    assert cache.sha256(st.st_dev, st.st_ino, [str(f)]) == \
        hashlib.sha256(b"v1+v2+v3+v4").hexdigest()


def test_the_resolver_says_when_a_run_changed_before_it_was_hashed(tmp_path: Path):
    from netwarden.model import EventKind
    from netwarden.sensor.fileid import version_of
    from netwarden.sensor.identity import ExeRef
    from netwarden.sensor.persist import ProgramResolver
    f = tmp_path / "prog"
    f.write_bytes(b"v1")
    st = os.stat(f)
    ran = ExeRef(str(f), st.st_dev, st.st_ino, version=version_of(st.st_dev, st.st_ino, [str(f)]))
    with open(f, "ab") as handle:
        handle.write(b"+v2")
    resolver = ProgramResolver(HashCache(), {str(f): "a" * 64}, lambda: 5.0)
    assert resolver.executable(ran, "prog").sha256 == ""
    assert resolver.executable(ran, "prog").sha256 == ""        # said once
    (event,) = resolver.take_events()
    fields = event.field_dict()
    assert event.kind is EventKind.EXE_MODIFIED and fields["old_sha256"] == "a" * 64
    assert fields["new_sha256"] == "" and "before it could be hashed" in str(fields["detail"])
