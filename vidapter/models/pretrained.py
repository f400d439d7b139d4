"""Backbone weights: where they come from, reading every file format, exact loading, and model directories.

``load_backbone`` reads a checkpoint (TorchScript archive, pickled state dict, safetensors, npz, or a Hugging Face
directory), converts it with the one table of its layout (models/convert.py), resizes positional embeddings to the
model's grid, and loads strictly: a missing, extra or misshapen key is an error that names the keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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
from vidapter.models.convert import CONVERTERS, ConversionError, detect_format, unwrap
from vidapter.models.torchscript import is_torchscript_archive, read_torchscript_tensors
from vidapter.models.vit import VisionTransformer, ViTFacts, resize_pos_embed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Weights:
    """A published image checkpoint: which backbone row it fits, where it lives, its sha256 when published.
    ``packaged`` weights ship inside the vidapter package (a path relative to it) and need no download."""

    backbone: str
    url: str
    sha256: str | None = None
    packaged: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _openai(backbone: str, sha256: str, filename: str) -> Weights:
    """OpenAI publishes each file's sha256 as a directory of its address."""
    return Weights(backbone, f"https://openaipublic.azureedge.net/clip/models/{sha256}/{filename}", sha256)


WEIGHTS: dict[str, Weights] = {
    "openai:ViT-B/32": _openai(
        "clip_vitb32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"
    ),
    "openai:ViT-B/16": _openai(
        "clip_vitb16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"
    ),
    "openai:ViT-L/14": _openai(
        "clip_vitl14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"
    ),
    "openai:ViT-L/14@336px": _openai(
        "clip_vitl14_336", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"
    ),
    # The IN-21K ViT-B/16 the AIM reference used (timm's jx_ port of Google's release) and Google's original npz.
    "timm:vit_base_patch16_224_in21k": Weights(
        "in21k_vitb16",
        "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-vitjx/"
        "jx_vit_base_patch16_224_in21k-e5005f0a.pth",
    ),
    "google:ViT-B_16-in21k": Weights(
        "in21k_vitb16", "https://storage.googleapis.com/vit_models/imagenet21k/ViT-B_16.npz"
    ),
    # Pretrained by vidapter on synthetic images (python -m vidapter.demo.pretrain); shipped in the package.
    "vidapter:demo-vit": Weights("demo_vit", "", packaged="demo/demo_vit.safetensors"),
}


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
    if target.exists():
        return target
    hint = f"download {w.url} and place it at {target} (or pass its path as pretrained=)"
    if os.environ.get("VIDAPTER_OFFLINE") == "1":
        raise WeightsError(f"{spec} is not in the cache and VIDAPTER_OFFLINE=1: {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", w.url, target)
    try:
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            urllib.request.urlopen(w.url, timeout=30) as r,
        ):
            while chunk := r.read(1 << 20):
                tmp.write(chunk)
        if w.sha256 and sha256_file(tmp.name) != w.sha256:
            raise WeightsError(f"{w.url}: sha256 does not match the published {w.sha256}")
        os.replace(tmp.name, target)
    except (OSError, WeightsError) as e:
        Path(tmp.name).unlink(missing_ok=True)
        raise WeightsError(f"could not download {spec} ({e}); {hint}") from e
    return target


def _check_hf_config(cfg: dict, facts: ViTFacts, path: Path) -> None:
    vc = cfg.get("vision_config", cfg)
    expected = {
        "hidden_size": facts.width,
        "num_hidden_layers": facts.depth,
        "num_attention_heads": facts.heads,
        "patch_size": facts.patch_size,
        "hidden_act": facts.act,
        "layer_norm_eps": facts.ln_eps,
    }
    for key, want in expected.items():
        if key in vc and vc[key] != want:
            raise WeightsError(f"{path}/config.json: {key} is {vc[key]!r}, but the backbone expects {want!r}")


def read_checkpoint(path: str | os.PathLike, facts: ViTFacts | None = None, trust_pickle: bool = False) -> dict:
    """Read tensors from a file or Hugging Face directory into a flat ``name -> tensor`` dict.

    Nothing in the file runs: TorchScript archives are read as data (models/torchscript.py), pickled files with the
    restricted loader unless ``trust_pickle``."""
    path = Path(path)
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).exists():
                if facts is not None and (path / "config.json").exists():
                    _check_hf_config(read_json(path / "config.json"), facts, path)
                return read_checkpoint(path / name, trust_pickle=trust_pickle)
        raise WeightsError(f"{path}: a model directory needs model.safetensors or pytorch_model.bin")
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
    fmt = fmt or detect_format(raw)
    if fmt not in CONVERTERS or fmt == "aim_official":
        raise WeightsError(f"{path}: format {fmt!r} is not an image backbone layout")
    try:
        sd = CONVERTERS[fmt](raw)
    except ConversionError as e:
        raise WeightsError(f"{path}: {e}") from e
    want = vit.state_dict()
    report = LoadReport(spec, str(path), fmt, len(sd))
    pos = sd.get("pos_embed")
    if pos is not None and pos.shape != want["pos_embed"].shape and pos.shape[-1] == want["pos_embed"].shape[-1]:
        sd["pos_embed"] = resize_pos_embed(pos.float(), vit.grid)
        report.resized["pos_embed"] = [list(pos.shape), list(sd["pos_embed"].shape)]
    check_keys(sd, want, f"{path} ({fmt}) does not fit backbone {vit.name}")
    vit.load_state_dict(sd, strict=True)
    log.info("%s", report)
    return report
