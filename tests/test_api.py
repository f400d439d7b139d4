"""The public API: every name importable from the package root, exactly the README's table, importing it cheaply,
and the README's runnable Python blocks run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import vidapter
from vidapter import config
from vidapter.adapters import registry

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_api_names() -> list[str]:
    section = README.read_text().split("### Python API", 1)[1].split("```", 1)[0]
    return sorted(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))


def test_all_is_the_readme_table_and_every_name_imports():
    assert vidapter.__all__ == _readme_api_names()
    for name in vidapter.__all__:
        assert getattr(vidapter, name) is not None, name
    assert callable(vidapter.VideoClassifier.from_pretrained) and callable(vidapter.VideoClassifier.predict)
    assert vidapter.evaluate.__module__ == "vidapter.evaluation"  # the function, not a module of that name


def test_version_is_the_installed_one():
    from importlib.metadata import version

    assert vidapter.__version__ == version("vidapter")


def test_import_loads_no_heavy_library():
    code = "import sys, vidapter; print(sorted(m for m in ('torch', 'av', 'matplotlib', 'cv2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_listings(capsys):
    from vidapter.cli import main

    assert vidapter.list_presets()[0] == "k400_vitb16_8f" and "synthetic" in vidapter.list_presets()
    assert {"clip_vitb16", "in21k_vitb16", "demo_vit"} <= set(vidapter.list_backbones())
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "in21k_vitb16" in out and "timm:vit_base_patch16_224_in21k, google:ViT-B_16-in21k" in out


def _runnable_blocks() -> list[str]:
    return re.findall(r"```python runnable\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(_runnable_blocks())))
def test_readme_python_blocks_run_as_written(index, data, tmp_path, monkeypatch, capsys):
    """Run in a folder holding what the README's blocks refer to: runs/demo/model (as `vidapter demo` leaves it,
    here untrained) and clip.mp4."""
    import shutil

    cfg = vidapter.get_preset("synthetic")
    names = (data / "classes.txt").read_text().splitlines()
    cfg.model.num_classes = len(names)  # the demo's 13 classes
    vidapter.save_pretrained(vidapter.build_model(cfg.model), cfg, tmp_path / "runs" / "demo" / "model", names)
    shutil.copy(data / "test" / "grow" / "00000.mp4", tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))  # a method the block registers stays here
    monkeypatch.setattr(config, "MODEL_SECTIONS", dict(config.MODEL_SECTIONS))  # and its config section
    exec(compile(_runnable_blocks()[index], f"README.md block {index}", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip(), "the block printed nothing"
    if "register_method" in _runnable_blocks()[index]:  # trained one epoch: a finite loss near log(3)
        assert 0.5 < float(out.strip().splitlines()[-1]) < 2.0 and (tmp_path / "runs/synthetic/model").is_dir()
    elif "predict" in _runnable_blocks()[index]:
        assert "'file': 'clip.mp4'" in out and "'top': [" in out
    else:
        assert out.strip() == "torch.Size([2, 19])"
