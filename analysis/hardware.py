"""The hardware catalog (``analysis/hardware.json``) and what one run ran on (docs/hardware.md).

The catalog gives per-GPU link bandwidth (NVLink / Infinity Fabric per GPU per direction, PCIe for cards
without one) and memory bandwidth, network link rates and a few named systems, every entry with its source.
A run's GPU is matched from the names ``run.json`` and imported logs carry (``NVIDIA H100 80GB HBM3``,
``Tesla V100-SXM2-16GB``, ``AMD Instinct MI300X``...); a name the catalog does not know is said to be unknown,
never guessed. What names cannot tell (NICs per node and their speed, the NVLink domain of a rack) comes from
options (``--nic-gbps 400 --nics-per-node 8``) or a hardware file (``hardware.toml`` / ``hardware.json``)
beside the results. Precedence: options > hardware file > named system > catalog > run.json.

All bandwidths in GB/s (1e9 B/s) except NIC rates, which are in Gb/s as vendors quote them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import topology
from analysis.errors import AnalysisError

CATALOG_PATH = Path(__file__).with_name("hardware.json")
#: hardware files looked for in a run directory and in its parent (the results directory)
HARDWARE_FILES = ("hardware.toml", "hardware.json")
#: keys a hardware file (and the matching options) may set, with their types
FILE_KEYS: dict[str, type] = {
    "gpu": str, "system": str, "link_gbps": float, "hbm_gbps": float, "nic_gbps": float,
    "nics_per_node": int, "gpus_per_node": int, "nnodes": int, "nvlink_domain_gpus": int, "note": str,
    "roof_min_bytes": int,
}  # fmt: skip


@dataclass(frozen=True)
class GPU:
    """One catalog entry: link_gbps per GPU per direction (None: no scale-up link), hbm_gbps memory bandwidth."""

    id: str
    name: str
    vendor: str
    patterns: tuple[str, ...]
    link: str | None
    link_gbps: float | None
    hbm_gbps: float | None
    source: str
    checked: bool = False
    note: str = ""


@dataclass(frozen=True)
class Catalog:
    gpus: tuple[GPU, ...]
    networks: tuple[dict[str, Any], ...]
    systems: dict[str, dict[str, Any]]

    def gpu(self, key: str) -> GPU | None:
        """The entry whose id is ``key``, else the entry ``key`` (a GPU name) matches; None when unknown."""
        k = key.strip().lower()
        for g in self.gpus:
            if g.id == k:
                return g
        return match_gpu(key, self)


@functools.lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The catalog shipped with the package (parsed once)."""
    raw = json.loads(CATALOG_PATH.read_text())
    gpus = tuple(
        GPU(id=g["id"], name=g["name"], vendor=g["vendor"], patterns=tuple(g["patterns"]), link=g.get("link"),
            link_gbps=g.get("link_gbps"), hbm_gbps=g.get("hbm_gbps"), source=g["source"],
            checked=bool(g.get("checked")), note=g.get("note", ""))
        for g in raw["gpus"]
    )  # fmt: skip
    return Catalog(gpus=gpus, networks=tuple(raw["networks"]), systems={s["id"]: s for s in raw["systems"]})


def match_gpu(name: str | None, cat: Catalog | None = None) -> GPU | None:
    """The first catalog entry (most specific first) one of whose patterns occurs in ``name``; None if none."""
    if not name:
        return None
    for g in (cat or catalog()).gpus:
        if any(re.search(p, name, re.IGNORECASE) for p in g.patterns):
            return g
    return None


# --- a user's hardware file and options ------------------------------------------------------------------


def _coerce(key: str, value: Any, where: str) -> Any:
    kind = FILE_KEYS.get(key)
    if kind is None:
        raise AnalysisError(f"{where}: unknown key {key!r} (known: {', '.join(FILE_KEYS)})")
    if kind is str:
        if not isinstance(value, str):
            raise AnalysisError(f"{where}: {key} must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnalysisError(f"{where}: {key} must be a number, not {value!r}")
    if kind is int and value != int(value):
        raise AnalysisError(f"{where}: {key} must be a whole number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise AnalysisError(f"{where}: {key} must be > 0, not {value!r}")
    return kind(value)


def read_hardware_file(path: str | Path) -> dict[str, Any]:
    """The settings of a hardware file: TOML (Python >= 3.11) or JSON, flat ``key = value`` pairs (FILE_KEYS)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such hardware file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: cannot read hardware file ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnalysisError(f"{path}: not valid JSON ({exc})") from None
    else:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise AnalysisError(f"{path}: reading TOML needs Python >= 3.11; write it as hardware.json") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AnalysisError(f"{path}: not valid TOML ({exc})") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{path}: a hardware file is a table of key = value pairs")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def find_hardware_file(run_dir: Path) -> Path | None:
    """hardware.toml / hardware.json in the run directory, else in its parent; None when neither has one."""
    for d in (run_dir, run_dir.parent):
        for name in HARDWARE_FILES:
            if (d / name).is_file():
                return d / name
    return None


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The hardware settings given as options (validated like a file's)."""
    out = {}
    for key in FILE_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            out[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    if getattr(args, "hardware", None):
        out["_file"] = str(args.hardware)
    return out


# --- what one run ran on -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What the verdict and the roofline know about a run's machine; every number says where it came from."""

    device: str | None
    gpu_name: str | None  # as run.json has it
    gpu: GPU | None
    link_gbps: float | None
    hbm_gbps: float | None
    nic_gbps: float | None
    nics_per_node: int | None
    nnodes: int | None
    gpus_per_node: int | None
    domain_gpus: int | None  # GPUs in one scale-up (NVLink / xGMI) domain
    origin: dict[str, str] = field(default_factory=dict)  # field -> where it came from
    notes: tuple[str, ...] = ()
    #: the smallest size a peak is judged at (an emulated NIC's token bucket passes smaller bursts above its rate)
    roof_min_bytes: int | None = None

    @property
    def link_name(self) -> str:
        if self.gpu is not None and self.gpu.link and self.origin.get("link_gbps") == "catalog":
            return f"{self.gpu.link} of {self.gpu.name}"
        return "the GPU link"

    def describe(self) -> str:
        """One line: GPU, topology, link, network, and where they came from."""
        gpu = self.gpu.name if self.gpu else (f"{self.gpu_name} (not in the catalog)" if self.gpu_name else "no GPU")
        if self.nnodes and self.gpus_per_node:
            topo = f"{self.nnodes} node(s) x {self.gpus_per_node} ranks ({self.origin.get('nnodes')})"
        else:
            topo = "topology unknown (give --nnodes / --gpus-per-node or a hardware file)"
        parts = [gpu, topo]
        if self.link_gbps:
            parts.append(f"link {self.link_gbps:g} GB/s per direction ({self.origin.get('link_gbps')})")
        if self.hbm_gbps:
            parts.append(f"memory {self.hbm_gbps:g} GB/s ({self.origin.get('hbm_gbps')})")
        if self.nic_gbps and self.nics_per_node:
            total = self.nics_per_node * self.nic_gbps / 8
            parts.append(f"network {self.nics_per_node} x {self.nic_gbps:g} Gb/s per node = {total:.4g} GB/s per node "
                         f"({self.origin.get('nic_gbps')})")  # fmt: skip
        if self.domain_gpus and self.domain_gpus != self.gpus_per_node:
            parts.append(f"NVLink domain {self.domain_gpus} GPUs ({self.origin.get('domain_gpus')})")
        if self.roof_min_bytes:
            parts.append(f"peaks judged at {self.roof_min_bytes} B and above ({self.origin.get('roof_min_bytes')})")
        return "; ".join(parts)


def _int(x: Any) -> int | None:
    try:
        v = int(x)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def _recorded_topology(meta: dict[str, Any], world: int | None, notes: list[str]) -> tuple[int | None, int | None]:
    """(nnodes, GPUs per node) as run.json records them; (None, None) for an import whose rank lines were
    incomplete (written before collbench stopped guessing from them: fewer rank hosts than ranks)."""
    hw = meta.get("hardware") or {}
    nnodes = _int(hw.get("nnodes")) or _int(meta.get("nnodes"))
    per_node = _int(meta.get("ranks_per_node")) or _int(hw.get("gpus_per_node"))
    rank_hosts = hw.get("rank_hosts")
    if isinstance(rank_hosts, list) and world and len(rank_hosts) < world and hw.get("topology_source") != "given":
        if nnodes or per_node:
            notes.append(f"run.json's topology ({nnodes} x {per_node}) came from {len(rank_hosts)} rank line(s) of "
                         f"{world} ranks: ignored as unknown")  # fmt: skip
        return None, None
    return nnodes, per_node


def _topology(meta: dict[str, Any], world: int | None, settings: dict[str, Any], origin: dict[str, str],
              notes: list[str]) -> tuple[int | None, int | None, int | None]:  # fmt: skip
    """(nnodes, GPUs per node, NVLink domain GPUs): named system < run.json < hardware file < options (a system
    says what its nodes hold, the run what it used), where a higher source's nodes or GPUs per node fixes the
    other from the world size (analysis.topology.check refuses numbers that do not fit it). Unknown stays
    None: never one node by default."""
    nnodes, per_node = _recorded_topology(meta, world, notes)
    hw = meta.get("hardware") or {}
    src = f"run.json ({hw['topology_source']})" if hw.get("topology_source") else "run.json"
    levels = {"nnodes": (0, nnodes, src), "gpus_per_node": (0, per_node, src)}
    for key in ("nnodes", "gpus_per_node"):
        if key in settings:
            where = origin[key]
            # a named system says what a node has: below what the run recorded, above nothing
            lvl = -1 if where.startswith("system") else (2 if where.startswith("hardware file") else 3)
            if lvl > levels[key][0] or levels[key][1] is None:
                levels[key] = (lvl, settings[key], where)
    if levels["nnodes"][1] is not None and levels["gpus_per_node"][0] < 0 and levels["nnodes"][0] >= 0:
        levels["gpus_per_node"] = (-2, None, "")  # the run's own node count wins over a system's node size
    (ln, nnodes, on), (lg, per_node, og) = levels["nnodes"], levels["gpus_per_node"]
    domain = settings.get("nvlink_domain_gpus") or _int(hw.get("nvlink_domain_gpus"))
    od = origin.get("nvlink_domain_gpus") or ("run.json" if domain else None)
    system_gpus = lg < 0  # a named system's GPUs per node need not divide a run that used part of its nodes
    if world and per_node and not system_gpus and max(ln, lg) >= 1:
        topology.check(world, nnodes if ln == lg else None, per_node, None, og)
    if world and nnodes and ln >= 1:
        topology.check(world, nnodes, None, None, on)
    if world and per_node and (lg > ln or nnodes is None):
        nnodes, on = max(1, math.ceil(world / per_node)), f"world size / GPUs per node ({og})"
        per_node = min(per_node, world)
    elif world and nnodes and (ln > lg or per_node is None):
        per_node, og = world // nnodes, f"world size / nodes ({on})"
    if domain and per_node:
        topology.check(None, None, per_node, domain, od or "option")
    for key in ("nvlink_domain_gpus", "nnodes", "gpus_per_node"):  # set below from what was used
        origin.pop(key, None)
    for key, value, where in (("nnodes", nnodes, on), ("gpus_per_node", per_node, og), ("domain_gpus", domain, od)):
        if value is not None:
            origin[key] = where
    return nnodes, per_node, domain


def resolve(meta: dict[str, Any], run_dir: Path | None = None, overrides: dict[str, Any] | None = None) -> Machine:
    """The :class:`Machine` of one run: run.json, then the catalog, a named system, a hardware file, options."""
    overrides = dict(overrides or {})
    cat = catalog()
    hw = meta.get("hardware") or {}
    world = _int(meta.get("world_size"))
    origin: dict[str, str] = {}
    notes: list[str] = []
    settings: dict[str, Any] = {}
    file = overrides.pop("_file", None)
    path = Path(file) if file else (find_hardware_file(run_dir) if run_dir is not None else None)
    from_file = read_hardware_file(path) if path is not None else {}
    where_file = f"hardware file {path.name}" if path is not None else ""
    system_id = overrides.get("system") or from_file.get("system")
    system: dict[str, Any] = {}
    if system_id:
        if system_id not in cat.systems:
            raise AnalysisError(f"unknown system {system_id!r} (known: {', '.join(cat.systems)})")
        system = cat.systems[system_id]
    # lowest precedence first: system, then file, then options
    for src_name, src in ((f"system {system_id}", system), (where_file, from_file), ("option", overrides)):
        for key, value in src.items():
            if key in FILE_KEYS and key not in ("system", "note"):
                settings[key], origin[key] = value, src_name
    gpu_name = hw.get("gpu_model")
    gpu: GPU | None = None
    if "gpu" in settings:
        gpu = cat.gpu(str(settings["gpu"]))
        if gpu is None:
            raise AnalysisError(f"GPU {settings['gpu']!r} ({origin['gpu']}) is not in the catalog "
                                f"(ids: {', '.join(g.id for g in cat.gpus)})")  # fmt: skip
        origin["gpu"] = origin.get("gpu", "option")
    elif gpu_name:
        gpu = match_gpu(str(gpu_name), cat)
        origin["gpu"] = "run.json name"
        if gpu is None:
            notes.append(f"GPU {gpu_name!r} is not in the hardware catalog: its link and memory roofs are unknown "
                         "(name one with --gpu, or give --link-gbps / a hardware file)")  # fmt: skip
    if gpu is not None and gpu_name and origin.get("gpu") != "run.json name":
        matched = match_gpu(str(gpu_name), cat)
        if matched is not None and matched.id != gpu.id:
            notes.append(f"run.json names {gpu_name!r} ({matched.id}) but {origin['gpu']} says {gpu.id}: "
                         f"using {gpu.id}")

    def pick(key: str, catalog_value: Any, catalog_origin: str = "catalog") -> Any:
        if key in settings:
            return settings[key]
        if catalog_value is not None:
            origin[key] = catalog_origin
        return catalog_value

    link = pick("link_gbps", gpu.link_gbps if gpu else None)
    hbm = pick("hbm_gbps", gpu.hbm_gbps if gpu else None)
    nnodes, per_node, domain = _topology(meta, world, settings, origin, notes)
    return Machine(
        device=meta.get("device"), gpu_name=gpu_name, gpu=gpu, link_gbps=link, hbm_gbps=hbm,
        nic_gbps=settings.get("nic_gbps"), nics_per_node=settings.get("nics_per_node"), nnodes=nnodes,
        gpus_per_node=per_node, domain_gpus=domain, origin=origin, notes=tuple(notes),
        roof_min_bytes=settings.get("roof_min_bytes"),
    )  # fmt: skip
