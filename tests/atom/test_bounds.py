"""Bad and oversized job specs are a SpecError (a 400 in the service), never anything else;
specs, arrays and log reads are bounded."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jupyter_ext.atom.backends.base import LOG_BLOCK, MAX_LOG_BYTES
from jupyter_ext.atom.backends.local import LocalBackend, _read_log
from jupyter_ext.atom.backends.slurm import read_user_file
from jupyter_ext.atom.errors import SpecError
from jupyter_ext.atom.estimate import estimate
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.atom.spec import (
    FIELDS,
    MAX_SPEC_BYTES,
    JobSpec,
    parse_memory,
    parse_spec,
    parse_walltime,
)
from jupyter_ext.costs.catalog import process_catalog
from tests.atom.helpers import settle

BASE = {"name": "ok", "command": ["true"]}

# --- nasty values ---------------------------------------------------------------------------

HUGE = st.one_of(
    st.integers(), st.integers(min_value=2**62), st.integers(max_value=-(2**62)),
    st.sampled_from([63, 64, 399, 5000]).map(lambda e: 10**e),  # 10**5000 has no str()
    st.sampled_from([63, 399]).map(lambda e: -(10**e)),
)
NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "\x7f", "\n", "\ud800", "a\udcff", "é", "💥" * 100, "9" * 400, "9" * 5000,
    "9" * 5000 + "s", "9" * 5000 + "Mi", "1" + "0" * 30 + "Gi", "1e999", "NaN", "inf", "-1",
    "٣", "𝟗", " 5 ", "0x10", "1_000", "4Gi", "4GB", "1.5", ".5Ki", "1:99:99", "-1:00",
    "99999999999999999999:00", "9" * 40 + "-00:00:00", "j-0123456789ab", "afterok:j-0123456789ab",
    "afterwards:j-0123456789ab", "s3://b/" + "x" * 2000, "/" + "a" * 5000, "/../etc/passwd",
    "x" * 64, "x" * 65, "x" * 257, "x" * 8193, "x" * 70000, "true", "yes", "lens:user", "LENS_JOB_ID",
    "PATH", "geos-chem-classic", "wrf", "gchp", "container", "arm64", "14.3.1", "local", "batch",
])
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=80),
                 st.text(st.characters(), max_size=20))
SCALAR = st.one_of(st.none(), st.booleans(), HUGE, st.floats(), TEXT)
KEYS = st.one_of(TEXT, st.sampled_from(["size", "params", "parallel", "id", "type", "X", "Y_1"]))
JSONISH = st.recursive(
    SCALAR, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                   st.dictionaries(KEYS, kids, max_size=4)),
    max_leaves=10)

# Per field: mostly plausible shapes with nasty contents, so the parser gets deep.
NAMES = st.sampled_from(["X", "OMP_NUM_THREADS", "a" * 129, "1X", "PATH", "LENS_X", "project",
                         "lens:user", "k" * 128])
FIELD_VALUES = {
    "memory": st.one_of(HUGE, st.from_regex(
        r"[0-9]{1,40}(\.[0-9]{1,6})?(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|GB)?", fullmatch=True)),
    "walltime": st.one_of(HUGE, st.from_regex(r"([0-9]{1,40}-)?([0-9]{1,40}:)?[0-9]{1,40}:[0-9]{2}",
                                              fullmatch=True),
                          st.from_regex(r"[0-9]{1,50} ?[smhd]", fullmatch=True)),
    "vcpus": HUGE, "gpus": HUGE, "nodes": HUGE,
    "array": st.one_of(HUGE, st.fixed_dictionaries({}, optional={
        "size": st.one_of(HUGE, TEXT), "parallel": st.one_of(HUGE, TEXT),
        "params": st.one_of(JSONISH, st.lists(st.dictionaries(NAMES, SCALAR, max_size=3), max_size=6)),
    })),
    "depends_on": st.one_of(TEXT, st.lists(st.one_of(TEXT, st.dictionaries(
        st.sampled_from(["id", "type", "x"]), SCALAR, max_size=2)), max_size=5)),
    "env": st.dictionaries(st.one_of(NAMES, TEXT), SCALAR, max_size=5),
    "tags": st.dictionaries(st.one_of(NAMES, TEXT), SCALAR, max_size=5),
    "command": st.one_of(TEXT, st.lists(st.one_of(TEXT, SCALAR), max_size=5)),
    "inputs": st.one_of(TEXT, st.lists(st.one_of(TEXT, SCALAR), max_size=5)),
    "app": st.one_of(TEXT, st.sampled_from(["wrf", "gchp", "geos-chem-classic", "container"])),
    "version": st.one_of(TEXT, st.sampled_from(["14.3.1", "4.6.1", "4.5.2"])),
}
# ... and plausible good ones, so accepted specs are checked too.
SMALL = st.integers(0, 70)
GOOD_VALUES = {
    "memory": st.one_of(st.integers(1, 10**6), st.sampled_from(["512Mi", "4Gi", "4G", "1.5Gi"])),
    "walltime": st.one_of(st.integers(1, 10**6), st.sampled_from(["90m", "2h", "01:00:00"])),
    "vcpus": SMALL, "gpus": st.integers(0, 2), "nodes": st.integers(1, 3), "spot": st.booleans(),
    "array": st.one_of(st.integers(1, 50), st.fixed_dictionaries(
        {"size": st.just(2), "params": st.lists(st.dictionaries(NAMES, st.text(max_size=5),
                                                                max_size=2), min_size=2, max_size=2)},
        optional={"parallel": SMALL})),
    "env": st.dictionaries(NAMES, st.one_of(st.text(max_size=10), SMALL), max_size=3),
    "tags": st.dictionaries(NAMES, st.text(max_size=10), max_size=3),
    "arch": st.sampled_from(["x86_64-amd", "x86_64-intel", "arm64"]),
    "depends_on": st.lists(st.sampled_from(["j-0123456789ab", "afterany:j-0123456789ac"]),
                           max_size=2),
    "inputs": st.lists(st.sampled_from(["s3://bucket/a", "/data/b", "/x/../y"]), max_size=2),
    "outputs": st.sampled_from(["s3://bucket/out/", "/data/out"]),
    "app": st.sampled_from(["wrf", "gchp", "geos-chem-classic", "container"]),
    "name": st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,70}", fullmatch=True),
    "command": st.lists(st.text(max_size=20), min_size=1, max_size=3),
    "script": st.text(max_size=50),
}
FIELD_NAME = st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS), TEXT)


@st.composite
def specs(draw):
    data = dict(BASE)
    for _ in range(draw(st.integers(0, 4))):  # good values, to get deep into the parser
        key = draw(st.sampled_from(sorted(GOOD_VALUES)))
        data[key] = draw(GOOD_VALUES[key])
    for _ in range(draw(st.integers(0, 2))):  # then a nasty one or two
        key = draw(FIELD_NAME)
        data[key] = draw(st.one_of(GOOD_VALUES.get(key, SCALAR), FIELD_VALUES.get(key, SCALAR),
                                   JSONISH))
    if draw(st.integers(0, 7)) == 0:
        data.pop(draw(st.sampled_from(["name", "command"])), None)
    return data


def check_parse(data, catalog) -> JobSpec | None:
    """The property: a spec is accepted or refused with a SpecError, nothing else; an
    accepted one is bounded, valid Unicode and estimates (or refuses) cleanly."""
    try:
        spec = parse_spec(data, catalog)
    except SpecError as exc:
        assert exc.field and str(exc)
        assert len(str(exc)) < 4000, "messages quote user input only in part"
        return None
    text = json.dumps(spec.to_dict(), ensure_ascii=False)
    assert len(text.encode("utf-8")) <= MAX_SPEC_BYTES + 1024
    try:
        estimate(spec, catalog, process_catalog())
    except SpecError:
        pass
    return spec


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.large_base_example])
@given(data=specs())
@example(data={**BASE, "memory": 10**399})
@example(data={**BASE, "memory": "9" * 400})
@example(data={**BASE, "walltime": "9" * 5000})
@example(data={**BASE, "walltime": "9" * 5000 + "s"})
@example(data={**BASE, "walltime": 10**5000})
@example(data={**BASE, "vcpus": "9" * 5000})
@example(data={**BASE, "array": {"params": 5}})
@example(data={**BASE, "array": {"size": 2, "params": {"X": "1"}}})
@example(data={**BASE, "env": {"X": 10**5000}})
@example(data={**BASE, "command": ["\ud800"]})
@example(data={**BASE, 3: "x", "y": 1})
@example(data={**BASE, "tags": {"a": float("nan")}})
def test_every_bad_spec_is_a_spec_error(catalog, data):
    check_parse(data, catalog)


def nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("extra", [
    {"env": {"X": nested(100_000)}},  # deeper than json can encode
    {"env": {"X": {1, 2}}},  # not JSON data at all
    {"array": {"size": 3, "params": [{"X": "1"}] * 3}, "outputs": object()},
])
def test_non_json_and_absurdly_nested_specs_are_spec_errors(catalog, extra):
    with pytest.raises(SpecError, match="^spec: is not plain JSON data"):
        parse_spec({**BASE, **extra}, catalog)


def test_the_named_findings(catalog):
    with pytest.raises(SpecError, match="^memory: cannot parse '9999"):
        parse_spec({**BASE, "memory": "9" * 400}, catalog)
    with pytest.raises(SpecError, match="^memory: a huge number is out of range"):
        parse_memory(10**399)
    with pytest.raises(SpecError, match="^walltime: cannot parse"):
        parse_walltime("9" * 5000)
    with pytest.raises(SpecError, match="^walltime: a huge number is out of range"):
        parse_walltime(10**5000)
    with pytest.raises(SpecError, match="^spec: contains text that is not valid Unicode"):
        parse_spec({**BASE, "command": ["echo", "\ud800"]}, catalog)


def test_specs_are_bounded_in_bytes_params_and_strings(catalog):
    big = {**BASE, "env": {f"V{i}": "x" * 30000 for i in range(700)}}  # the 19 MiB finding
    with pytest.raises(SpecError, match=r"^spec: is \d+ bytes as JSON, more than 65536"):
        parse_spec(big, catalog)
    with pytest.raises(SpecError, match=r"^spec: is \d+ bytes as JSON, more than 1024"):
        parse_spec({**BASE, "env": {"X": "x" * 2000}}, catalog, max_bytes=1024)
    too_many = {**BASE, "array": {"size": 1, "params": [{f"P{i}": "1" for i in range(51)}]}}
    with pytest.raises(SpecError, match=r"^array.params\[0\]: more than 50 entries"):
        parse_spec(too_many, catalog)
    with pytest.raises(SpecError, match=r"^array.params\[0\].P: value longer than 4096"):
        parse_spec({**BASE, "array": {"params": [{"P": "x" * 4097}]}}, catalog)
    with pytest.raises(SpecError, match="^array.size: 10001 is out of range"):
        parse_spec({**BASE, "array": 10001}, catalog)
    with pytest.raises(SpecError, match="^name: invalid value"):
        parse_spec({**BASE, "name": "n" * 65}, catalog)
    with pytest.raises(SpecError, match="^script: longer than 65536"):
        parse_spec({"name": "s", "script": "x" * 65537}, catalog, max_bytes=2**20)
    # what fits is accepted: a 10,000-member array, and a spec just under the byte limit
    assert parse_spec({**BASE, "array": 10000}, catalog).array_size == 10000
    assert parse_spec({**BASE, "env": {"X": "x" * 30000}}, catalog).env_dict["X"] == "x" * 30000


# --- the manager's configurable bounds ------------------------------------------------------


@pytest.fixture
def manager(shared_dir, engine, ledger, catalog, unix_users):
    return JobManager(engine, {"local": LocalBackend(state_dir=shared_dir + "/l")}, ledger,
                      catalog=catalog, max_spec_bytes=4096, max_array_size=100,
                      max_active_tasks=5)


async def test_array_size_and_active_tasks_per_user_are_bounded(manager, ledger):
    with pytest.raises(SpecError, match=r"^array.size: 101 members .*allowed: 1..100"):
        manager.estimate({**BASE, "array": 101})
    with pytest.raises(SpecError, match=r"^array.size: 101 members"):
        await manager.submit("atomalice", [], {**BASE, "array": 101})
    with pytest.raises(SpecError, match=r"^spec: is \d+ bytes as JSON, more than 4096"):
        await manager.submit("atomalice", [], {**BASE, "env": {"X": "x" * 5000}})
    first = await manager.submit("atomalice", [], {"name": "a", "command": ["sleep", "30"],
                                                   "array": 4, "walltime": "5m"})
    with pytest.raises(SpecError, match="^array.size: you have 4 tasks held, pending or running; "
                                        "2 more would pass the limit of 5"):
        await manager.submit("atomalice", [], {**BASE, "array": 2})
    assert len(ledger.holds) == 1  # the refused one held nothing
    other = await manager.submit("atombob", [], {**BASE, "array": 5})  # per user
    await manager.cancel("atomalice", first["id"])
    done = await settle(manager, "atomalice", [first["id"]])
    assert done[0]["state"] == "CANCELLED"
    again = await manager.submit("atomalice", [], {**BASE, "array": 5})  # finished jobs free slots
    await settle(manager, "atomalice", [again["id"]])
    await settle(manager, "atombob", [other["id"]])


def test_settings_configure_the_bounds(shared_dir, engine, ledger):
    from traitlets.config import Config

    from jupyter_ext.atom.settings import AtomSettings

    c = Config()
    c.LocalBackend.state_dir = shared_dir + "/cfg"
    c.AtomSettings.max_spec_bytes = 8192
    c.AtomSettings.max_array_size = 50
    c.AtomSettings.max_active_tasks = 60
    manager = AtomSettings(config=c).build_manager(engine, ledger)
    assert (manager.max_spec_bytes, manager.max_array_size, manager.max_active_tasks) == (8192, 50, 60)
    assert AtomSettings.max_active_tasks.help and AtomSettings.max_spec_bytes.help


# --- logs: read from the end, bounded -------------------------------------------------------


def bytes_read() -> int:
    """This process's bytes read by read(2) and friends so far (the kernel's count)."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


@pytest.fixture
def big_log(tmp_path):
    """A 24 MiB output file of numbered lines (and a last line without newline)."""
    path = tmp_path / "output.log"
    with open(path, "w") as f:
        f.writelines(f"line {i:08d} {'x' * 48}\n" for i in range(400_000))
        f.write("the end")
    assert path.stat().st_size > 20 * MAX_LOG_BYTES
    return path


def expected_tail(n: int) -> list[str]:
    return [f"line {i:08d} {'x' * 48}" for i in range(400_000 - n + 1, 400_000)] + ["the end"]


@pytest.mark.parametrize("reader", ["local", "slurm"])
def test_log_tail_reads_only_the_end_of_a_big_file(big_log, reader):
    def read(tail):
        if reader == "local":
            return _read_log(big_log, tail)
        return read_user_file(big_log, big_log.stat().st_uid, tail)

    before = bytes_read()
    text = read(20)
    assert bytes_read() - before < 2 * LOG_BLOCK
    assert text.splitlines() == expected_tail(20)
    before = bytes_read()
    text = read(None)  # everything is capped too, to whole lines
    assert bytes_read() - before < MAX_LOG_BYTES + LOG_BLOCK
    assert MAX_LOG_BYTES - 100 <= len(text.encode()) <= MAX_LOG_BYTES
    assert text.startswith("line ") and text.endswith("x\nthe end")
    before = bytes_read()
    text = read(10**9)
    assert bytes_read() - before < MAX_LOG_BYTES + LOG_BLOCK
    assert text.splitlines() == expected_tail(len(text.splitlines()))
    assert read(0) == "" and read(-5) == ""


def test_small_and_unicode_logs_are_whole(tmp_path):
    path = tmp_path / "output.log"
    path.write_text("é\n💥\nlast\n")
    assert _read_log(path, 2) == "💥\nlast\n"
    assert _read_log(path, None) == "é\n💥\nlast\n"
    assert _read_log(tmp_path / "missing", 5) == ""


async def test_job_logs_tail_through_the_manager_is_bounded(shared_dir, engine, ledger, catalog,
                                                             unix_users):
    manager = JobManager(engine, {"local": LocalBackend(state_dir=shared_dir + "/l")}, ledger,
                         catalog=catalog)
    rec = await manager.submit("atomalice", [], {
        "name": "chatty", "walltime": "5m", "command": [
            "python3", "-c", "import sys\nfor i in range(300_000): sys.stdout.write(f'line {i}\\n')"]})
    [done] = await settle(manager, "atomalice", [rec["id"]])
    assert done["state"] == "SUCCEEDED"
    before = bytes_read()
    text = await manager.logs("atomalice", rec["id"], tail=20)
    assert bytes_read() - before < 2 * LOG_BLOCK
    assert text.splitlines() == [f"line {i}" for i in range(299_980, 300_000)]


# --- the event loop stays free while big local arrays refresh -------------------------------


async def test_refresh_of_big_local_arrays_keeps_the_event_loop_responsive(
        shared_dir, engine, ledger, catalog, unix_users):
    backend = LocalBackend(state_dir=shared_dir + "/l", max_concurrency=1)
    manager = JobManager(engine, {"local": backend}, ledger, catalog=catalog,
                         max_active_tasks=30000)
    ids = [(await manager.submit("atomalice", [], {
        "name": f"big{i}", "command": ["sleep", "60"], "array": 10000, "walltime": "5m"}))["id"]
        for i in range(3)]
    lateness: list[float] = []
    done = asyncio.Event()

    async def ticker():  # a 10 ms timer, as the service's other requests would see the loop
        while not done.is_set():
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lateness.append(time.monotonic() - start - 0.01)

    task = asyncio.create_task(ticker())
    start = time.monotonic()
    counts = await manager.refresh()
    took = time.monotonic() - start
    done.set()
    await task
    try:
        assert counts == {"local": 3}
        assert [manager.get("atomalice", i)["counts"].get("PENDING", 0) for i in ids] == [
            9999, 10000, 10000]
        # the refresh costs the running member, not the 30,000 waiting ones (reading their
        # files took 1.7 s here), and never holds the loop
        assert took < 0.5, f"refresh took {took:.2f} s"
        assert max(lateness, default=0) < 0.1, f"the loop stalled {max(lateness):.2f} s"
        # an unchanged record (the waiting arrays) is not rewritten by the next refresh
        written = manager.store.get(ids[2])["updated"]
        await manager.refresh()
        assert manager.store.get(ids[2])["updated"] == written
    finally:
        for job_id in ids:
            await manager.cancel("atomalice", job_id)
        await settle(manager, "atomalice", ids)
