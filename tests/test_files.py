"""Files in and out: no command runs code from a file it reads (unless --trust-pickle), damaged files give one line
naming the file (exit status 1), and a full disk (ENOSPC from a patched writer) leaves every earlier file whole."""

from __future__ import annotations

import errno
import io
import json
import random
import zipfile

import numpy as np
import pytest
import torch
from runs import train_args

from vidapter import files
from vidapter.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from vidapter.cli import main
from vidapter.files import FileError, WriteError, load_torch_file, write_atomic, write_dir_atomic
from vidapter.models.torchscript import read_torchscript_tensors


class _Payload:
    """Unpickling this creates the file ``marker`` (through ``open``): what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _crafted(path, marker):
    state = {"format": "vidapter-checkpoint", "version": 2, "model": {}, "config": {}, "backbone": {}, "epoch": 0,
             "batch": 0, "step": 0, "payload": _Payload(marker)}  # fmt: skip
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """A finished one-epoch run: its last.pt is the template for damaged checkpoints."""
    run = tmp_path_factory.mktemp("files") / "run"
    assert main(["train", *train_args(data, run, "--train.epochs=1")]) == 0
    return run


def _one_error_line(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("vidapter: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _commands(data, tmp_path, ckpt) -> dict[str, list[str]]:
    clip = str(data / "test" / "grow" / "00000.mp4")
    return {
        "predict": ["predict", str(ckpt), clip],
        "eval": ["eval", str(ckpt), "--split", "val"],
        "export": ["export", str(ckpt), "--model-dir", str(tmp_path / "exported")],
        "resume": ["train", *train_args(data, tmp_path / "resumed", f"--train.resume={ckpt}")],
    }


COMMANDS = ["predict", "eval", "export", "resume"]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_crafted_checkpoint_runs_no_code(data, tmp_path, capsys, command):
    marker = tmp_path / "marker"
    ckpt = _crafted(tmp_path / "best.pt", marker)
    assert main(_commands(data, tmp_path, ckpt)[command]) == 1
    _one_error_line(capsys, str(ckpt), "refuses", "io.open", "--trust-pickle")
    assert not marker.exists()


def test_the_crafted_checkpoint_is_real(tmp_path):
    """Full pickle, what --trust-pickle allows, does run it: the test above can fail."""
    marker = tmp_path / "marker"
    load_checkpoint(_crafted(tmp_path / "best.pt", marker), trust_pickle=True)
    assert marker.exists()


def test_a_crafted_pretrained_file_runs_no_code(data, tmp_path, capsys):
    marker = tmp_path / "marker"
    torch.save({"pos_embed": torch.zeros(1), "x": _Payload(marker)}, tmp_path / "vit.pth")
    assert main(["train", *train_args(data, tmp_path / "r", f"--model.pretrained={tmp_path / 'vit.pth'}")]) == 1
    _one_error_line(capsys, str(tmp_path / "vit.pth"), "io.open")
    assert not marker.exists()


def test_a_crafted_torchscript_archive_runs_no_code(tmp_path):
    """An archive whose data.pkl calls a function is refused by name; the real archive is read in test_vit.py."""
    marker = tmp_path / "marker"
    path = tmp_path / "ViT-B-16.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ViT-B-16/constants.pkl", b"\x80\x02).")
        z.writestr("ViT-B-16/data.pkl", torch.serialization.pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(FileError, match=r"data.pkl names (io|builtins)\.open"):
        read_torchscript_tensors(path)
    assert not marker.exists()


def _damaged(kind: str, template, path):
    raw = template.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "text":
        path.write_text("epoch 3, loss 0.1\n")
    elif kind == "state_dict":  # a plain state dict: another format
        torch.save({"head.fc.weight": torch.zeros(2, 2)}, path)
    elif kind == "missing_keys":
        state = load_checkpoint(template)
        del state["config"], state["optimizer"]
        torch.save(state, path)
    return path


DAMAGE = {
    "empty": "the file is empty",
    "truncated": "truncated or damaged",
    "text": "not a PyTorch file",
    "state_dict": "not a vidapter training checkpoint",
    "missing_keys": "incomplete vidapter checkpoint, missing config",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoints_give_one_line(data, run, tmp_path, capsys, command, kind):
    ckpt = _damaged(kind, run / "last.pt", tmp_path / "last.pt")
    assert main(_commands(data, tmp_path, ckpt)[command]) == 1
    _one_error_line(capsys, str(ckpt), DAMAGE[kind])


def test_resume_needs_the_optimizer_state(run, tmp_path):
    state = load_checkpoint(run / "last.pt")
    del state["optimizer"]
    torch.save(state, tmp_path / "last.pt")
    load_checkpoint(tmp_path / "last.pt")  # enough to predict
    with pytest.raises(CheckpointError, match="missing optimizer"):
        load_checkpoint(tmp_path / "last.pt", resume=True)


def test_checkpoints_hold_only_what_the_restricted_loader_reads(run):
    """No global beyond tensors and plain containers; the file loads with plain torch.load(weights_only=True)."""
    assert torch.serialization.get_unsafe_globals_in_checkpoint(run / "last.pt") == []
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["format"] == "vidapter-checkpoint" and state["version"] == 3


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.normal(), [random.random() for _ in range(3)]


def test_rng_states_round_trip_bit_for_bit(tmp_path):
    np.random.normal()  # leaves a cached Gaussian in NumPy's state: it must travel too
    random.gauss(0, 1)
    save_checkpoint({"rng": [rng_state()]}, tmp_path / "c.pt")
    expected = _draws()
    state = load_torch_file(tmp_path / "c.pt")
    set_rng_state(state["rng"][0])
    assert _draws() == expected


def test_checkpoints_of_the_first_format_still_resume(tmp_path):
    """vidapter 0.1 stored NumPy's state as an array and Python's as a tuple: read by the restricted loader."""
    np.random.normal()
    legacy = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    torch.save({"format": "vidapter-checkpoint", "rng": [legacy]}, tmp_path / "old.pt")
    expected = _draws()
    set_rng_state(load_torch_file(tmp_path / "old.pt")["rng"][0])
    assert _draws() == expected


class _Filling(io.FileIO):
    """A file on a disk with ``free`` bytes left: writes succeed until those are used, the one that crosses the limit
    stores what fits and fails with ENOSPC (so torch.save sees its first writes succeed, as on a real disk)."""

    def __init__(self, path, mode: str, free: int):
        super().__init__(path, mode)
        self.free = free

    def write(self, b):
        data = bytes(b)
        if len(data) <= self.free:
            self.free -= len(data)
            return super().write(data)
        super().write(data[: self.free])
        self.free = 0
        raise OSError(errno.ENOSPC, "No space left on device")


class _FullDisk:
    """Replaces the writer of vidapter.files: files whose name contains ``name`` are written whole ``after`` times,
    then every such file is on a full disk."""

    def __init__(self, name: str, after: int = 0, free: int = 100):
        self.name, self.after, self.free, self.opened = name, after, free, 0

    def __call__(self, path, mode="wb"):
        if self.name in str(path).rsplit("/", 1)[-1]:
            self.opened += 1
            if self.opened > self.after:
                return _Filling(path, mode.replace("b", ""), self.free)
        return open(path, mode)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_a_full_disk_at_the_model_export_keeps_the_run(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("model.safetensors"))
    assert main(["train", *train_args(data, run, "--train.epochs=1")]) == 1
    export = f"vidapter export {run / 'last.pt'} --model-dir {run / 'model'}"
    line = _one_error_line(capsys, f"{run / 'model'}: could not write (No space left on device)",
                           "model/ was not created", export)  # fmt: skip
    assert not (run / "model").exists() and _leftovers(run) == []
    monkeypatch.undo()
    command = line.split("`")[1].split()
    assert main(command[1:]) == 0  # what the message says to run
    assert (run / "model" / "model.safetensors").exists() and load_checkpoint(run / "last.pt")["epoch"] == 1


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("last.pt", after=2))
    args = train_args(data, run, "--train.epochs=2", "--train.ckpt_every=1")
    assert main(["train", *args]) == 1
    _one_error_line(capsys, f"{run / 'last.pt'}: could not write (No space left on device)", "last.pt is unchanged",
                    "is complete (epoch 1, batch 2, step 2)", "run the same command")  # fmt: skip
    state = load_checkpoint(run / "last.pt", resume=True)
    assert state["step"] == 2 and _leftovers(run) == []
    monkeypatch.undo()
    assert main(["train", *args]) == 0  # resumes from step 2
    assert load_checkpoint(run / "last.pt")["step"] == 8


def test_a_full_disk_in_the_run_logs_names_the_last_checkpoint(tmp_path, monkeypatch):
    from vidapter.log import RunLog, write_reports

    log = RunLog(tmp_path, tensorboard=False)
    log.intact = "last.pt is complete (epoch 1, batch 0, step 4)"
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("metrics.jsonl", free=10))
    with pytest.raises(WriteError, match=r"metrics.jsonl: could not write \(No space left on device\); last.pt is"):
        log.record("train", 1, loss=0.5)
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("confusion.png"))
    history = [{"epoch": 0, "train_loss": 1.0, "train_top1": 0.5}]
    with pytest.raises(WriteError, match=r"confusion.png: could not write .* the reports are optional"):
        write_reports(tmp_path, history, np.eye(2, dtype=int), ["a", "b"], intact="the reports are optional")
    assert (tmp_path / "curves.png").stat().st_size > 0 and not (tmp_path / "confusion.png").exists()
    assert _leftovers(tmp_path) == []


def test_export_to_a_full_disk_leaves_the_old_model_directory(run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run / "last.pt"), "--model-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("config.json"))
    assert main(["export", str(run / "last.pt"), "--model-dir", str(out)]) == 1
    _one_error_line(capsys, f"{out}: could not write (No space left on device)", "exported/ is unchanged")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and _leftovers(tmp_path) == []
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("adapters"))
    assert main(["export", str(run / "last.pt"), "--adapters", str(tmp_path / "adapters.safetensors")]) == 1
    _one_error_line(capsys, "adapters.safetensors: could not write", "was not created")
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    (out / "model.safetensors").write_bytes(b"stale")  # replaced whole by a successful export
    assert main(["export", str(run / "last.pt"), "--model-dir", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and _leftovers(tmp_path) == []


def test_export_never_replaces_a_folder_that_is_not_a_model_directory(run, tmp_path, capsys):
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter1.tex").write_text("keep me")
    assert main(["export", str(run / "last.pt"), "--model-dir", str(tmp_path / "thesis")]) == 1
    _one_error_line(capsys, "thesis: already exists and is not a folder this command writes; not replaced")
    assert [p.name for p in (tmp_path / "thesis").iterdir()] == ["chapter1.tex"] and _leftovers(tmp_path) == []


def test_resume_refuses_another_optimizer_layout(data, run, tmp_path, capsys):
    """The parameter groups depend on optim.decay_groups: resuming under another rule is refused, naming the flag."""
    import shutil

    shutil.copy(run / "last.pt", tmp_path / "last.pt")
    args = train_args(data, tmp_path / "r", "--train.epochs=2", f"--train.resume={tmp_path / 'last.pt'}")
    assert main(["train", *args, "--optim.decay_groups=reference"]) == 2
    _one_error_line(capsys, "written with optim.decay_groups=norm_bias_embed, this run has reference",
                    "--optim.decay_groups=norm_bias_embed")  # fmt: skip


def test_damaged_torchscript_archive_is_one_line(tmp_path):
    from vidapter.models.pretrained import WeightsError, read_checkpoint

    with zipfile.ZipFile(tmp_path / "ViT-B-16.pt", "w") as z:
        z.writestr("ViT-B-16/constants.pkl", b"\x80\x02).")
        z.writestr("ViT-B-16/data.pkl", b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(Q")  # cut mid-record
    with pytest.raises(WeightsError, match=r"ViT-B-16.pt: damaged TorchScript archive"):
        read_checkpoint(tmp_path / "ViT-B-16.pt")
    raw = (tmp_path / "ViT-B-16.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) - 30])  # no central directory
    with pytest.raises(WeightsError, match=r"cut.pt: truncated or damaged"):
        read_checkpoint(tmp_path / "cut.pt")


def test_write_atomic_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    write_atomic(target, lambda f: f.write(b'{"v": 1}'))
    monkeypatch.setattr(files, "_open_for_write", _FullDisk("a.json", free=3))
    with pytest.raises(WriteError, match="a.json is unchanged; run again"):
        write_atomic(target, lambda f: f.write(b'{"v": 2}'), intact="run again")
    assert json.loads(target.read_text()) == {"v": 1} and _leftovers(tmp_path) == []
    with pytest.raises(WriteError, match="d/ was not created"):
        write_dir_atomic(tmp_path / "d", lambda tmp: write_atomic(tmp / "a.json", lambda f: f.write(b'{"v": 3}')))
    assert not (tmp_path / "d").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("kind", ["empty", "truncated", "text"])
def test_damaged_weight_files_give_one_line(data, run, tmp_path, capsys, kind):
    """model.pretrained and convert read weights through the same reader: the same one-line errors."""
    weights = _damaged(kind, run / "last.pt", tmp_path / "vit.pth")
    assert main(["train", *train_args(data, tmp_path / "r", f"--model.pretrained={weights}")]) == 1
    _one_error_line(capsys, str(weights), DAMAGE[kind])
    out = str(tmp_path / "o")
    assert main(["convert", "aim-official", str(weights), out, "--preset", "k400_vitb16_8f"]) == 1
    _one_error_line(capsys, str(weights), DAMAGE[kind])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model.safetensors").write_bytes(b"\x10\x00"), "model.safetensors: not a readable safetensors"),
        (lambda d: (d / "config.json").write_text("{"), "config.json: not a readable JSON file"),
        (lambda d: (d / "config.json").write_text('{"format": "vidapter-model"}'), "config.json: missing 'config'"),
    ],
)
def test_damaged_model_directories_give_one_line(run, tmp_path, capsys, damage, message):
    import shutil

    model = shutil.copytree(run / "model", tmp_path / "model")
    damage(model)
    assert main(["export", str(model), "--adapters", str(tmp_path / "a.safetensors")]) == 1
    _one_error_line(capsys, message)


def test_damaged_adapter_file_is_named(run, tmp_path):
    from vidapter.adapters.peft import load_adapters
    from vidapter.classifier import from_pretrained
    from vidapter.models.pretrained import WeightsError

    (tmp_path / "a.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(WeightsError, match=r"a.safetensors: not a readable safetensors file"):
        load_adapters(from_pretrained(run / "model")[0], tmp_path / "a.safetensors")
