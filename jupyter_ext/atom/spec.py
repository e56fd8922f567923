"""The job spec: a pure, validated description of one atom job.

``parse_spec(data, catalog)`` turns a JSON-like mapping (from the REST API, the
magics or the CLI) into a frozen :class:`JobSpec`. Every rejection is a
:class:`SpecError` naming the field and the allowed values. Nothing here runs
anything: backends turn a spec into argv lists or API calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..quantity import QuantityError, parse_quantity
from .errors import SpecError

ARCHES = ("x86_64-amd", "x86_64-intel", "arm64")
DEP_TYPES = ("afterok", "afterany")
DEFAULT_ARCH = "x86_64-amd"

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
TAG_KEY_RE = re.compile(r"^[A-Za-z0-9_.:/=+@-]{1,128}\Z")
TAG_VALUE_RE = re.compile(r"^[\w .:/=+@-]{0,256}\Z")
JOB_ID_RE = re.compile(r"^j-[0-9a-f]{12}\Z")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
RESERVED_ENV_PREFIXES = ("LENS_", "SLURM_", "AWS_BATCH_", "AWS_")
RESERVED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV")

MAX_SPEC_BYTES = 64 * 1024  # the whole spec as compact JSON (UTF-8)
MAX_ARG = 8192
MAX_COMMAND = 65536
MAX_SCRIPT = MAX_SPEC_BYTES
MAX_ENV_VALUE = 32768
MAX_ENV = 200
MAX_ARRAY = 10000
MAX_NODES = 1000
MAX_VCPUS = 4096
MAX_GPUS = 16
MAX_MEMORY_MIB = 4 * 1024 * 1024
MIB = 2**20
MAX_WALLTIME = 14 * 86400
MAX_INPUTS = 1000
MAX_PARAMS = 50  # variables per array member
MAX_PARAM_VALUE = 4096
INT_TEXT_RE = re.compile(r"-?[0-9]{1,18}")  # an integer given as a string

FIELDS = (
    "name", "app", "version", "image", "command", "script", "arch", "vcpus", "memory",
    "gpus", "nodes", "walltime", "spot", "array", "depends_on", "inputs", "outputs",
    "env", "tags", "project", "backend",
)


@dataclass(frozen=True)
class Dependency:
    job_id: str
    type: str = "afterok"


@dataclass(frozen=True)
class ArraySpec:
    size: int
    params: tuple[tuple[tuple[str, str], ...], ...] = ()
    parallel: int | None = None

    def params_for(self, index: int) -> dict[str, str]:
        return dict(self.params[index]) if self.params else {}


@dataclass(frozen=True)
class JobSpec:
    name: str
    command: tuple[str, ...] = ()
    script: str | None = None
    app: str | None = None
    version: str | None = None
    image: str | None = None
    arch: str = DEFAULT_ARCH
    vcpus: int = 1
    memory_mib: int = 2048
    gpus: int = 0
    nodes: int = 1
    walltime_s: int = 3600
    spot: bool = False
    array: ArraySpec | None = None
    depends_on: tuple[Dependency, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    project: str | None = None
    backend: str | None = None
    mpi: bool = field(default=False)

    @property
    def array_size(self) -> int:
        return self.array.size if self.array else 1

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @property
    def tags_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form; ``parse_spec(spec.to_dict(), catalog)`` gives it back."""
        d = asdict(self)
        d["memory"] = f"{d.pop('memory_mib')}Mi"
        d["walltime"] = d.pop("walltime_s")
        d["command"] = list(self.command)
        d["env"] = self.env_dict
        d["tags"] = self.tags_dict
        d["inputs"] = list(self.inputs)
        d["depends_on"] = [{"id": x.job_id, "type": x.type} for x in self.depends_on]
        d.pop("mpi")
        if self.array:
            d["array"] = {"size": self.array.size, "parallel": self.array.parallel,
                          "params": [dict(p) for p in self.array.params]}
        return d


# --- small pure parsers -------------------------------------------------------------------


def _no_controls(fld: str, text: str, allow_newline: bool = False) -> str:
    bad = [c for c in text if (ord(c) < 32 and not (allow_newline and c in "\n\t")) or c == "\x7f"]
    if "\x00" in text or bad:
        raise SpecError(fld, "contains control characters", "printable text" +
                        (", newlines and tabs" if allow_newline else ""))
    return text


def _str(data: Mapping, key: str, pattern: re.Pattern | None = None, allowed: str = "",
         required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise SpecError(key, "is required", allowed or None)
        return None
    if not isinstance(value, str):
        raise SpecError(key, f"must be a string, not {type(value).__name__}", allowed or None)
    if pattern is not None and not pattern.match(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise SpecError(key, f"invalid value {shown!r}", allowed or pattern.pattern)
    return value


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SpecError(key, f"must be an integer, not {type(value).__name__}", f"{lo}..{hi}")
    if isinstance(value, str):
        text = value.strip()
        if not INT_TEXT_RE.fullmatch(text):
            raise SpecError(key, f"not an integer: {value[:40]!r}", f"{lo}..{hi}")
        value = int(text)
    if not lo <= value <= hi:
        shown = str(value) if -10**40 < value < 10**40 else ("-" if value < 0 else "") + "a huge number"
        raise SpecError(key, f"{shown} is out of range", f"{lo}..{hi}")
    return value


def parse_memory(value: Any, key: str = "memory") -> int:
    """Memory per node in MiB (rounded up) from a size.

    Strings are Kubernetes quantities, as everywhere in lens (``jupyter_ext.quantity``):
    "4Gi" is 4096 MiB, "4G" is 4×10⁹ bytes (3815 MiB). A bare number, int or
    string, is MiB, as job specs have always said ("memory": 2048).
    """
    allowed = "a size like '512Mi', '4Gi' (GiB) or '4G' (10^9 bytes), or a whole number of MiB"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SpecError(key, "must be a size", allowed)
    if isinstance(value, int):
        return _int(key, value, 1, MAX_MEMORY_MIB)
    try:
        nbytes = parse_quantity(value, bare_unit="Mi")
    except QuantityError:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise SpecError(key, f"cannot parse {shown!r}", allowed) from None
    return _int(key, -(-nbytes // MIB), 1, MAX_MEMORY_MIB)


def parse_walltime(value: Any, key: str = "walltime") -> int:
    """Seconds from an int (seconds), or "MM:SS", "HH:MM:SS", "D-HH:MM:SS", "90m", "2h"."""
    allowed = "seconds, 'HH:MM:SS', 'D-HH:MM:SS', or '<n>s|m|h|d' (at most 14 days)"
    if isinstance(value, bool):
        raise SpecError(key, "must be a duration", allowed)
    if isinstance(value, int):
        return _int(key, value, 1, MAX_WALLTIME)
    if not isinstance(value, str):
        raise SpecError(key, "must be a duration", allowed)
    text = value.strip()
    if len(text) > 32:  # no sensible duration is longer; keeps int() off huge digit runs
        raise SpecError(key, f"cannot parse {value[:40]!r}", allowed)
    m = re.fullmatch(r"([0-9]+)\s*([smhd])", text)
    if m:
        mult = {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return _int(key, int(m.group(1)) * mult, 1, MAX_WALLTIME)
    m = re.fullmatch(r"(?:([0-9]+)-)?(?:([0-9]+):)?([0-9]+):([0-9]{2})", text)
    if not m:
        raise SpecError(key, f"cannot parse {value[:40]!r}", allowed)
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())  # "MM:SS" leaves h = 0
    return _int(key, ((d * 24 + h) * 60 + mi) * 60 + s, 1, MAX_WALLTIME)


def _command(value: Any) -> tuple[str, ...]:
    allowed = "a list of strings (argv; no shell is involved)"
    if value is None:
        return ()
    if isinstance(value, str):
        raise SpecError("command", "must be an argv list, not a string (split it with shlex)",
                        allowed)
    if not isinstance(value, Sequence) or not all(isinstance(a, str) for a in value):
        raise SpecError("command", "must be a list of strings", allowed)
    total = 0
    for arg in value:
        if "\x00" in arg:
            raise SpecError("command", "an argument contains a NUL byte", allowed)
        if len(arg) > MAX_ARG:
            raise SpecError("command", f"an argument is longer than {MAX_ARG} characters", allowed)
        total += len(arg)
    if total > MAX_COMMAND:
        raise SpecError("command", f"longer than {MAX_COMMAND} characters in total", allowed)
    if value and not value[0]:
        raise SpecError("command", "the program name is empty", allowed)
    return tuple(value)


def _mapping(key: str, value: Any, key_re: re.Pattern, max_value: int, allowed_keys: str,
             reserved: tuple[str, ...] = (), reserved_prefixes: tuple[str, ...] = (),
             limit: int = MAX_ENV) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise SpecError(key, "must be a mapping of strings to strings", allowed_keys)
    if len(value) > limit:
        raise SpecError(key, f"more than {limit} entries", allowed_keys)
    out = []
    for k, v in value.items():
        if not isinstance(k, str) or not key_re.match(k):
            raise SpecError(f"{key}.{str(k)[:40]}", "invalid name", allowed_keys)
        if k in reserved or k.startswith(reserved_prefixes):
            raise SpecError(f"{key}.{k}", "is reserved by lens",
                            "names not in " + ", ".join(reserved + tuple(p + "*" for p in reserved_prefixes)))
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise SpecError(f"{key}.{k}", "value must be a string")
        v = str(v)
        if "\x00" in v:
            raise SpecError(f"{key}.{k}", "value contains a NUL byte", "text without NUL")
        if len(v) > max_value:
            raise SpecError(f"{key}.{k}", f"value longer than {max_value} characters")
        out.append((k, v))
    return tuple(sorted(out))


def _env(value: Any, key: str = "env", limit: int = MAX_ENV,
         max_value: int = MAX_ENV_VALUE) -> tuple[tuple[str, str], ...]:
    return _mapping(key, value, ENV_KEY_RE, max_value, "names matching [A-Za-z_][A-Za-z0-9_]*",
                    reserved=RESERVED_ENV, reserved_prefixes=RESERVED_ENV_PREFIXES, limit=limit)


def _tags(value: Any) -> tuple[tuple[str, str], ...]:
    tags = _mapping("tags", value, TAG_KEY_RE, 256, "keys of [A-Za-z0-9_.:/=+@-], 1..128 chars",
                    reserved_prefixes=RESERVED_TAG_PREFIXES, limit=40)
    for k, v in tags:
        if not TAG_VALUE_RE.match(v):
            raise SpecError(f"tags.{k}", "invalid tag value",
                            "letters, digits, spaces and _ . : / = + - @ (at most 256)")
    return tags


def _array(value: Any) -> ArraySpec | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"size": value}
    if not isinstance(value, Mapping):
        raise SpecError("array", "must be a size or {size, params, parallel}",
                        f"an integer 1..{MAX_ARRAY} or a mapping")
    unknown = set(value) - {"size", "params", "parallel"}
    if unknown:
        raise SpecError(f"array.{sorted(unknown)[0]}", "unknown key", "size, params, parallel")
    params = value.get("params") or ()
    if params and (not isinstance(params, Sequence) or isinstance(params, str)):
        raise SpecError("array.params", "must be a list of mappings (one per index)")
    size = value.get("size", len(params) if params else None)
    if size is None:
        raise SpecError("array.size", "is required", f"1..{MAX_ARRAY}")
    size = _int("array.size", size, 1, MAX_ARRAY)
    if params:
        if not isinstance(params, Sequence) or isinstance(params, str) or len(params) != size:
            raise SpecError("array.params", f"must be a list of {size} mappings (one per index)")
        params = tuple(_env(p, key=f"array.params[{i}]", limit=MAX_PARAMS,
                            max_value=MAX_PARAM_VALUE) for i, p in enumerate(params))
    parallel = value.get("parallel")
    if parallel is not None:
        parallel = _int("array.parallel", parallel, 1, MAX_ARRAY)
    return ArraySpec(size=size, params=tuple(params), parallel=parallel)


def _depends(value: Any) -> tuple[Dependency, ...]:
    allowed = "job ids 'j-<12 hex>' as strings, 'afterok:ID', 'afterany:ID' or {id, type}"
    if value is None:
        return ()
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, Sequence) or len(value) > 100:
        raise SpecError("depends_on", "must be a list (at most 100)", allowed)
    deps = []
    for item in value:
        if isinstance(item, str):
            kind, _, job_id = item.rpartition(":")
            kind = kind or "afterok"
        elif isinstance(item, Mapping):
            job_id, kind = item.get("id"), item.get("type", "afterok")
        else:
            raise SpecError("depends_on", "invalid entry", allowed)
        if kind not in DEP_TYPES:
            raise SpecError("depends_on.type", f"unknown dependency type {str(kind)[:20]!r}",
                            ", ".join(DEP_TYPES))
        if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
            raise SpecError("depends_on.id", f"invalid job id {str(job_id)[:40]!r}", allowed)
        deps.append(Dependency(job_id, kind))
    return tuple(deps)


def _location(key: str, value: str) -> str:
    allowed = "s3://bucket/key URIs or absolute paths"
    if not isinstance(value, str):
        raise SpecError(key, "must be a string", allowed)
    _no_controls(key, value)
    if len(value) > 1024:
        raise SpecError(key, "longer than 1024 characters", allowed)
    if value.startswith("s3://"):
        if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$", value):
            raise SpecError(key, f"invalid S3 URI {value[:60]!r}", allowed)
    elif not value.startswith("/") or "/../" in value + "/":
        raise SpecError(key, f"invalid location {value[:60]!r}", allowed)
    return value


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise SpecError(key, f"must be true or false, not {str(value)[:20]!r}", "true, false")


# --- the parser ---------------------------------------------------------------------------


def spec_size(data: Any, max_bytes: int = MAX_SPEC_BYTES) -> int:
    """Bytes of ``data`` as compact UTF-8 JSON; a SpecError if it is larger than
    ``max_bytes``, is not JSON data (sets, objects, nesting deeper than Python allows)
    or holds text that is not valid Unicode (lone surrogates)."""
    try:
        size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError("spec", "contains text that is not valid Unicode",
                        "UTF-8 text without lone surrogates") from None
    except (TypeError, ValueError, RecursionError) as exc:
        shown = str(exc)[:80]
        raise SpecError("spec", f"is not plain JSON data ({shown})",
                        "strings, whole numbers, booleans, lists and objects") from None
    if size > max_bytes:
        raise SpecError("spec", f"is {size} bytes as JSON, more than {max_bytes}",
                        f"at most {max_bytes} bytes; put large inputs in files")
    return size


def parse_spec(data: Mapping[str, Any], catalog=None, max_bytes: int = MAX_SPEC_BYTES) -> JobSpec:
    """Validate ``data`` into a JobSpec, filling defaults from the app catalog entry.

    ``max_bytes`` bounds the whole spec as JSON (:func:`spec_size`) before any field is read.
    """
    if not isinstance(data, Mapping):
        raise SpecError("spec", "must be a mapping", ", ".join(FIELDS))
    spec_size(data, max_bytes)
    unknown = sorted((k for k in data if k not in FIELDS), key=str)
    if unknown:
        raise SpecError(str(unknown[0])[:40] or "(empty name)", "unknown field", ", ".join(FIELDS))
    name = _str(data, "name", NAME_RE, "a letter, then letters, digits, _ . - (at most 64)",
                required=True)
    arch = data.get("arch") or DEFAULT_ARCH
    if arch not in ARCHES:
        raise SpecError("arch", f"unknown architecture {str(arch)[:30]!r}", ", ".join(ARCHES))

    app_name = _str(data, "app", NAME_RE, "an app from the catalog")
    image = _str(data, "image", IMAGE_RE, "a container image reference")
    command = _command(data.get("command"))
    script = data.get("script")
    if script is not None:
        if not isinstance(script, str) or not script.strip():
            raise SpecError("script", "must be non-empty text", "a bash script")
        _no_controls("script", script, allow_newline=True)
        if len(script) > MAX_SCRIPT:
            raise SpecError("script", f"longer than {MAX_SCRIPT} characters")
        if command:
            raise SpecError("script", "give either command or script, not both", "command | script")

    defaults: dict[str, Any] = {}
    version = _str(data, "version", VERSION_RE, "a version listed in the catalog")
    mpi = False
    if app_name is not None:
        if catalog is None:
            raise SpecError("app", "no app catalog is configured")
        app = catalog.get(app_name)  # raises SpecError with the allowed names
        if image is not None:
            raise SpecError("image", "give either app or image, not both", "app | image")
        version = app.check_version(version)
        app.check_arch(arch)
        defaults = app.defaults_for(arch)
        mpi = app.mpi
        if not command and script is None:
            command = tuple(app.command)
    else:
        if version is not None:
            raise SpecError("version", "only valid together with app")
        if not command and script is None:
            raise SpecError("command", "an app, or a command or script, is required",
                            "app=<catalog name> | command=[argv] | script=<text>")
    if not command and script is None:
        raise SpecError("command", "the app has no default command; give command or script")

    def pick(key, default):
        for source in (data, defaults):
            if source.get(key) is not None:
                return source[key]
        return default

    vcpus = _int("vcpus", pick("vcpus", 1), 1, MAX_VCPUS)
    memory = parse_memory(pick("memory", 2048))
    gpus = _int("gpus", pick("gpus", 0), 0, MAX_GPUS)
    nodes = _int("nodes", pick("nodes", 1), 1, MAX_NODES)
    walltime = parse_walltime(pick("walltime", 3600))
    array = _array(data.get("array"))
    if array and nodes > 1:
        raise SpecError("array", "multi-node jobs cannot be arrays", "nodes=1 with array")
    inputs_raw = data.get("inputs") or ()
    if isinstance(inputs_raw, str) or not isinstance(inputs_raw, Sequence):
        raise SpecError("inputs", "must be a list", "s3:// URIs or absolute paths")
    if len(inputs_raw) > MAX_INPUTS:
        raise SpecError("inputs", f"more than {MAX_INPUTS} entries")
    inputs = tuple(_location("inputs", x) for x in inputs_raw)
    outputs = data.get("outputs")
    if outputs is not None:
        outputs = _location("outputs", outputs)
    project = _str(data, "project", NAME_RE, "one of your groups")
    backend = _str(data, "backend", re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z"), "local, slurm, batch")
    return JobSpec(
        name=name, command=command, script=script, app=app_name, version=version, image=image,
        arch=arch, vcpus=vcpus, memory_mib=memory, gpus=gpus, nodes=nodes, walltime_s=walltime,
        spot=_bool("spot", data.get("spot", False)), array=array,
        depends_on=_depends(data.get("depends_on")), inputs=inputs, outputs=outputs,
        env=_env(data.get("env")), tags=_tags(data.get("tags")), project=project,
        backend=backend, mpi=mpi,
    )


RESERVED_TAG_PREFIXES = ("lens:", "aws:")


def job_tags(user_tags: Mapping[str, str], *, user: str, project: str | None,
             job_id: str) -> dict[str, str]:
    """A job's tags: the user's, then lens's own, which always win.

    ``lens:project`` is the group the job is charged to, never a user tag of the
    same name (a user tag ``project`` stays a plain ``project`` tag). Reserved
    prefixes are dropped from user tags here too, not only at parse time.
    """
    own = {"lens:user": user, "lens:group": project or "none",
           "lens:project": project or "none", "lens:job": job_id}
    mine = {k: v for k, v in user_tags.items() if not k.startswith(RESERVED_TAG_PREFIXES)}
    return {**mine, **own}


def job_env(spec: JobSpec, job_id: str) -> dict[str, str]:
    """The user's variables, then lens's own (``lens_env``), which always win."""
    mine = {k: v for k, v in spec.env_dict.items()
            if k not in RESERVED_ENV and not k.startswith(RESERVED_ENV_PREFIXES)}
    return {**mine, **lens_env(spec, job_id)}


def lens_env(spec: JobSpec, job_id: str) -> dict[str, str]:
    """Variables lens sets in every job (values are data, never interpreted by a shell)."""
    env = {"LENS_JOB_ID": job_id, "LENS_JOB_NAME": spec.name, "LENS_ARCH": spec.arch,
           "LENS_NODES": str(spec.nodes), "LENS_VCPUS": str(spec.vcpus)}
    if spec.inputs:
        env["LENS_INPUTS"] = "\n".join(spec.inputs)
    if spec.outputs:
        env["LENS_OUTPUT_PREFIX"] = spec.outputs
    if spec.array:
        env["LENS_ARRAY_SIZE"] = str(spec.array.size)
    return env
