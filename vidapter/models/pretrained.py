"""Backbone weights: where they come from, reading every file format, exact loading, and model directories.

``load_backbone`` reads a checkpoint (TorchScript archive, pickled state dict, safetensors, npz, or a Hugging Face
directory), converts it with the one table of its layout (models/convert.py), resizes positional embeddings to the
model's grid, and loads strictly: a missing, extra or misshapen key is an error that names the keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vidapter.files import FileError, load_torch_file
from vidapter.models.backbones import FAMILIES, WEIGHTS, Weights  # noqa: F401  (Weights: for importers)
from vidapter.models.convert import ConversionError, unwrap
from vidapter.models.layouts import detect_layout, image_layouts
from vidapter.models.torchscript import is_torchscript_archive, read_torchscript_tensors
from vidapter.models.vit import BACKBONES, VisionTransformer, ViTFacts, resize_pos_embed

log = logging.getLogger(__name__)


class WeightsError(FileError, ValueError):
    """Weights that cannot be found, read or loaded; the message says what to do."""


@dataclass
class LoadReport:
    """What was loaded from where: kept with the model and written into run directories."""

    source: str
    path: str
    format: str
    num_tensors: int
    ignored: list[str] = field(default_factory=list)
    resized: dict[str, list[list[int]]] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"loaded {self.num_tensors} tensors ({self.format}) from {self.path}"
        for k, (a, b) in self.resized.items():
            text += f"; resized {k} {tuple(a)} -> {tuple(b)}"
        return text


def cache_dir() -> Path:
    return Path(os.environ.get("VIDAPTER_CACHE", Path.home() / ".cache" / "vidapter"))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_weights(spec: str) -> Path:
    """A path as is; a published name from the cache, downloaded into it when online (``VIDAPTER_OFFLINE=1`` stops
    that). Offline or failed, the error says which file to place where."""
    if spec not in WEIGHTS:
        path = Path(spec).expanduser()
        if not path.exists():
            raise WeightsError(
                f"pretrained weights {spec!r}: no such file, and not a known name ({', '.join(WEIGHTS)})"
            )
        return path
    w = WEIGHTS[spec]
    if w.packaged:
        path = Path(__file__).resolve().parents[1] / w.packaged
        if not path.exists():
            raise WeightsError(f"{spec}: {path} is missing from this installation; reinstall vidapter")
        return path
    target = cache_dir() / w.filename
    _fetch(spec, w.url, target, w.sha256)
    for name in w.companions:
        url, filename = w.companion(name)
        _fetch(spec, url, cache_dir() / filename)
    return target


def _fetch(spec: str, url: str, target: Path, sha256: str | None = None) -> None:
    """``url`` into ``target`` unless it is there (``VIDAPTER_OFFLINE=1``: the error says which file goes where)."""
    if target.exists():
        return
    hint = f"download {url} and place it at {target} (or pass the weights' path as pretrained=)"
    if os.environ.get("VIDAPTER_OFFLINE") == "1":
        raise WeightsError(f"{spec} is not in the cache and VIDAPTER_OFFLINE=1: {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, target)
    try:
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            urllib.request.urlopen(url, timeout=30) as r,
        ):
            while chunk := r.read(1 << 20):
                tmp.write(chunk)
        if sha256 and sha256_file(tmp.name) != sha256:
            raise WeightsError(f"{url}: sha256 does not match the published {sha256}")
        os.replace(tmp.name, target)
    except (OSError, WeightsError) as e:
        Path(tmp.name).unlink(missing_ok=True)
        raise WeightsError(f"could not download {spec} ({e}); {hint}") from e


def companion_file(spec: str, path: Path, name: str) -> Path:
    """The file ``name`` that came with the weights: beside them in their directory, or, for a published name, its
    cached copy."""
    if spec in WEIGHTS and name in WEIGHTS[spec].companions:
        return cache_dir() / WEIGHTS[spec].companion(name)[1]
    return (path if path.is_dir() else path.parent) / name


HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# Hugging Face's activation names -> the backbone table's
HF_ACTS = {"quick_gelu": "quick_gelu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
           "silu": "silu", "swish": "silu"}  # fmt: skip


def check_metadata(path: Path, facts: ViTFacts) -> None:
    """Refuse a file whose own description contradicts the backbone row: a Hugging Face ``config.json`` (sizes, eps,
    ``hidden_act``), timm's ``config.json`` (``architecture``) or open_clip's ``open_clip_config.json``
    (``quick_gelu``, sizes, mean/std). Read from a model directory, or beside a weights file. A bare state dict
    says none of this: there the backbone row named decides (GELU vs QuickGELU cannot be told from the weights)."""
    folder = path if path.is_dir() else path.parent
    if (folder / "config.json").exists():
        cfg = read_json(folder / "config.json")
        if "architecture" in cfg:  # timm's hub config
            _check_timm_config(cfg, facts, folder / "config.json")
        else:
            _check_hf_config(cfg, facts, folder / "config.json")
    if (folder / "open_clip_config.json").exists():
        _check_open_clip_config(read_json(folder / "open_clip_config.json"), facts, folder / "open_clip_config.json")


def _mismatch(where: Path, key: str, got, want, row_hint: str = "") -> WeightsError:
    return WeightsError(f"{where}: {key} is {got!r}, but the backbone expects {want!r}{row_hint}")


def _check_hf_config(cfg: dict, facts: ViTFacts, where: Path) -> None:
    vc = cfg.get("vision_config", cfg)
    act = vc.get("hidden_act")
    if vc.get("use_swiglu_ffn") or vc.get("use_gated_mlp"):
        act = "silu"  # DINOv2-g / DINOv3 gated MLP: SiLU gate whatever hidden_act says
    expected = {
        "hidden_size": facts.width,
        "num_hidden_layers": facts.depth,
        "num_attention_heads": facts.heads,
        "patch_size": facts.patch_size,
        "layer_norm_eps": facts.ln_eps,
    }
    if act is not None and HF_ACTS.get(act, act) != facts.act:
        hint = "; an exact-GELU CLIP (open_clip LAION-2B/DataComp) is a laion2b_*/datacomp_* row" \
            if {act, facts.act} == {"gelu", "quick_gelu"} else ""  # fmt: skip
        raise _mismatch(where, "hidden_act", act, facts.act, hint)
    for key, want in expected.items():
        if key in vc and vc[key] != want:
            raise _mismatch(where, key, vc[key], want)
    registers = vc.get("num_register_tokens")
    if registers is not None and registers != facts.registers:
        raise _mismatch(where, "num_register_tokens", registers, facts.registers)


def _gelu_variants(facts: ViTFacts) -> bool:
    family = FAMILIES.get(facts.family)
    return family is not None and family.gelu_variants


def _check_timm_config(cfg: dict, facts: ViTFacts, where: Path) -> None:
    arch = str(cfg["architecture"])
    families = [f.name for f in FAMILIES.values() if f.timm_architectures and re.fullmatch(f.timm_architectures, arch)]
    if families and facts.family not in families:
        raise WeightsError(f"{where}: architecture {arch!r} is a {families[0]} model, but the backbone is a "
                           f"{facts.family} row")  # fmt: skip
    if ("quickgelu" in arch) != (facts.act == "quick_gelu") and _gelu_variants(facts):
        raise _mismatch(where, "architecture", arch, "a QuickGELU CLIP" if facts.act == "quick_gelu" else "a GELU CLIP")


def _check_open_clip_config(cfg: dict, facts: ViTFacts, where: Path) -> None:
    model = cfg.get("model_cfg", cfg)
    vision = model.get("vision_cfg", {})
    if "timm_model_name" not in vision and _gelu_variants(facts):
        quick = bool(model.get("quick_gelu", False))
        if quick != (facts.act == "quick_gelu"):
            raise _mismatch(
                where,
                "quick_gelu",
                quick,
                facts.act == "quick_gelu",
                "; an exact-GELU CLIP is a laion2b_*/datacomp_* row, OpenAI's QuickGELU a clip_* row",
            )
        for key, want in (("width", facts.width), ("layers", facts.depth), ("patch_size", facts.patch_size)):
            if key in vision and vision[key] != want:
                raise _mismatch(where, f"vision_cfg.{key}", vision[key], want)
    mean = cfg.get("preprocess_cfg", {}).get("mean")
    if mean is not None and any(abs(m * 255 - f) > 0.05 for m, f in zip(mean, facts.mean, strict=False)):
        raise _mismatch(
            where,
            "preprocess_cfg.mean",
            mean,
            [round(f / 255, 5) for f in facts.mean],
            " (the row's input normalisation; choose the row made for these weights)",
        )


_READ_ONCE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("read_once", default=None)


@contextlib.contextmanager
def read_once():
    """Inside, ``read_checkpoint`` reads each file once: a model with a text head reads its CLIP file for the image
    tower and again for the text tower (hundreds of MB); the tensors are kept only until the block ends."""
    token = _READ_ONCE.set(_READ_ONCE.get() if _READ_ONCE.get() is not None else {})
    try:
        yield
    finally:
        _READ_ONCE.reset(token)


def read_checkpoint(path: str | os.PathLike, facts: ViTFacts | None = None, trust_pickle: bool = False) -> dict:
    """Read tensors from a file or Hugging Face directory into a flat ``name -> tensor`` dict (inside ``read_once``,
    a file read before comes from memory; its metadata is still checked against ``facts``).

    Nothing in the file runs: TorchScript archives are read as data (models/torchscript.py), pickled files with the
    restricted loader unless ``trust_pickle``."""
    cache = _READ_ONCE.get()
    if cache is None:
        return _read_checkpoint(Path(path), facts, trust_pickle)
    key = (str(Path(path).resolve()), trust_pickle)
    if key in cache:
        _check_beside(Path(path), facts)
        return dict(cache[key])
    cache[key] = _read_checkpoint(Path(path), facts, trust_pickle)
    return dict(cache[key])


def _check_beside(path: Path, facts: ViTFacts | None) -> None:
    """The metadata of a Hugging Face directory, or of a file as a hub repository names it (beside it), against
    ``facts``."""
    if facts is not None and (path.is_dir() or path.name in HUB_FILES):
        check_metadata(path, facts)


def _read_checkpoint(path: Path, facts: ViTFacts | None, trust_pickle: bool) -> dict:
    if path.is_dir():
        for name in HUB_FILES:
            if (path / name).exists():
                _check_beside(path, facts)
                return read_checkpoint(path / name, trust_pickle=trust_pickle)
        raise WeightsError(f"{path}: a model directory needs model.safetensors or pytorch_model.bin")
    _check_beside(path, facts)
    try:
        if path.suffix == ".safetensors":
            return read_safetensors(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: torch.from_numpy(np.array(z[k])) for k in z.files}
        if is_torchscript_archive(path):
            return read_torchscript_tensors(path)
        raw = load_torch_file(path, trust_pickle)
    except FileError as e:
        raise WeightsError(str(e)) from e
    except Exception as e:  # np.load, zipfile, safetensors on a damaged or foreign file raise many kinds
        raise WeightsError(f"{path}: not a readable {path.suffix or 'weights'} file ({type(e).__name__}: {e})") from e
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{path}: holds a {type(raw).__name__}, expected a dict of tensors (a state dict)")
    return unwrap(raw)


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from e


def read_json(path: str | os.PathLike) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: not a readable JSON file ({e})") from e
    if not isinstance(data, dict):
        raise WeightsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def check_keys(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor], what: str) -> None:
    """Exact key and shape check: an error names missing, unexpected and misshapen keys."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    shapes = [
        f"{k} {tuple(got[k].shape)} != {tuple(want[k].shape)}"
        for k in want
        if k in got and got[k].shape != want[k].shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if items:
            problems.append(
                f"{label}: {', '.join(items[:8])}" + (f" ... ({len(items)} in all)" if len(items) > 8 else "")
            )
    if problems:
        raise WeightsError(f"{what}: " + "; ".join(problems))


def load_backbone(vit: VisionTransformer, spec: str, fmt: str | None = None, trust_pickle: bool = False) -> LoadReport:
    """Load image weights named or located by ``spec`` into ``vit`` exactly; returns what was loaded from where."""
    if spec in WEIGHTS and WEIGHTS[spec].backbone != vit.name:
        raise WeightsError(f"{spec} is for backbone {WEIGHTS[spec].backbone}, not {vit.name}")
    path = resolve_weights(spec)
    raw = read_checkpoint(path, vit.facts, trust_pickle)
    fmt = fmt or detect_layout(raw)
    layouts = image_layouts()
    if fmt not in layouts:
        raise WeightsError(f"{path}: format {fmt!r} is not an image backbone layout ({', '.join(layouts)})")
    try:
        sd = layouts[fmt](raw)
    except ConversionError as e:
        raise WeightsError(f"{path}: {e}") from e
    want = vit.state_dict()
    report = LoadReport(spec, str(path), fmt, len(sd))
    pos = sd.get("pos_embed")
    if pos is not None and "pos_embed" in want and pos.shape != want["pos_embed"].shape \
            and pos.shape[-1] == want["pos_embed"].shape[-1]:  # fmt: skip
        slots = 1 if vit.facts.pos_embed == "cls" else 0
        try:
            sd["pos_embed"] = resize_pos_embed(pos.float(), vit.grid, slots, vit.facts.pos_resize)
        except ValueError as e:
            raise WeightsError(f"{path}: {e}; {_fits_rows(sd, vit)}") from e
        report.resized["pos_embed"] = [list(pos.shape), list(sd["pos_embed"].shape)]
    try:
        check_keys(sd, want, f"{path} ({fmt}) does not fit backbone {vit.name}")
    except WeightsError as e:
        raise WeightsError(f"{e}; {_fits_rows(sd, vit)}") from e
    vit.load_state_dict(sd, strict=True)
    log.info("%s", report)
    return report


def rows_fitting(sd: Mapping[str, torch.Tensor], rows, any_grid: bool = True) -> list[str]:
    """The backbone rows of ``rows`` whose image tower has exactly the converted tensors' keys and shapes (the
    positions at any grid, unless ``any_grid`` is false)."""
    fits = []
    for name in rows:
        with torch.device("meta"):
            want = VisionTransformer(BACKBONES[name], name=name).state_dict()
        if set(want) == set(sd) and all((any_grid and k == "pos_embed") or tuple(sd[k].shape) == tuple(want[k].shape)
                                        for k in want):  # fmt: skip
            fits.append(name)
    return fits


def _fits_rows(sd: Mapping[str, torch.Tensor], vit: VisionTransformer) -> str:
    """Which backbone rows the converted tensors fit (keys and shapes, positions at any grid): the hint in the
    error for a file named with the wrong row."""
    tiny = vit.name.startswith(("tiny_", "demo_"))
    fits = rows_fitting(sd, [n for n in BACKBONES if tiny or not n.startswith(("tiny_", "demo_"))])
    if not fits:
        return "it fits no backbone row"
    return f"it looks like {' or '.join(fits)}" + (
        " (rows that differ only in facts the weights cannot show: name the one made for these weights)"
        if len(fits) > 1
        else ""
    )
