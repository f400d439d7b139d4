"""Zero-shot classification with your own class names and the text heads, on a tiny CLIP file open_clip writes (its
text tower reads the real tokenizer's ids): the logits against open_clip's own encoders, the command line end to end,
and training from the text head."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from peers import hf_clip_model, open_clip_model
from runs import train_args

from vidapter.adapters.registry import METHODS
from vidapter.classifier import build_model, load_model
from vidapter.cli import main
from vidapter.config import ConfigError, ModelConfig
from vidapter.models.text import KINETICS_TEMPLATES
from vidapter.zeroshot import clip_row, read_labels, zero_shot_model

NAMES = ["juggling", "archery", "tai chi", "café au lait"]


def _open_clip_logits(names, templates, video):
    """exp(logit_scale) x cos(ViFi-CLIP's video embedding, CLIP's prompt ensemble), from open_clip alone."""
    import open_clip

    peer = open_clip_model(vocab=49408, context=77)
    b, t = video.shape[0], video.shape[2]
    with torch.no_grad():
        v = F.normalize(peer.encode_image(video.transpose(1, 2).flatten(0, 1)).view(b, t, -1).mean(1), dim=-1)
        w = torch.stack([F.normalize(F.normalize(peer.encode_text(open_clip.tokenize([x.format(n) for x in templates])),
                                                 dim=-1).mean(0), dim=-1) for n in names])  # fmt: skip
        return peer.logit_scale.exp() * v @ w.T


def test_zero_shot_logits_equal_open_clips(clip_file, video):
    templates = list(KINETICS_TEMPLATES[:3])
    model = zero_shot_model(clip_file, NAMES, templates=templates, backbone="tiny_clip",
                            overrides=["--model.num_frames=4"])  # fmt: skip
    with torch.no_grad():
        got = model(video)
    torch.testing.assert_close(got, _open_clip_logits(NAMES, templates, video), atol=1e-4, rtol=1e-5)
    assert model.config.model.head == "text" and model.class_names == NAMES
    assert "head.logit_scale" in {n for n, p in model.named_parameters() if p.requires_grad}
    assert "head.classes" in dict(model.named_buffers())  # fixed: head_train is false


def test_set_class_names_is_a_new_zero_shot_model(clip_file, video):
    model = zero_shot_model(clip_file, NAMES[:2], backbone="tiny_clip", overrides=["--model.num_frames=4"])
    model.set_class_names(NAMES[2:], templates=["a video of {}."])
    with torch.no_grad():
        torch.testing.assert_close(model(video), _open_clip_logits(NAMES[2:], ["a video of {}."], video), atol=1e-4,
                                   rtol=1e-5)  # fmt: skip
    assert model.num_classes == 2 and model.class_names == NAMES[2:]


def test_the_row_comes_from_the_file_or_is_asked_for(clip_file, tmp_path):
    with pytest.raises(ConfigError, match=r"it fits tiny_clip and tiny_open_clip, .* name one with --backbone"):
        clip_row(str(clip_file))
    hf_clip_model(vocab=49408, context=77).save_pretrained(tmp_path)  # its config.json says QuickGELU
    assert clip_row(str(tmp_path)) == "tiny_clip"
    assert clip_row("openai:ViT-B/16") == "clip_vitb16"
    with pytest.raises(ConfigError, match="backbone 'tiny_in21k' has no text tower in its releases; rows with one:"):
        clip_row(str(clip_file), "tiny_in21k")


def test_labels_are_read_with_clear_errors(tmp_path):
    assert read_labels(" juggling, tai chi ") == ["juggling", "tai chi"]
    (tmp_path / "names.txt").write_text("juggling\n\ntai chi\n", encoding="utf-8")
    assert read_labels(labels_file=tmp_path / "names.txt") == ["juggling", "tai chi"]
    with pytest.raises(ConfigError, match="an empty name between commas"):
        read_labels("a,,b")
    with pytest.raises(ConfigError, match="one of them"):
        read_labels()
    with pytest.raises(ConfigError, match=r"prompt template 'a video': expected exactly one \{\}"):
        zero_shot_model("unread.pt", ["a"], templates=["a video"], backbone="tiny_clip")  # before any file is read


def test_predict_and_eval_zero_shot_from_the_command_line(clip_file, data, tmp_path, capsys):
    clip = data / "test" / "grow" / "00000.mp4"
    common = ["--backbone", "tiny_clip", "--model.num_frames=4"]
    assert main(["predict", str(clip_file), str(clip), "--labels", "grow,shrink,blink", "--json", *common]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["file"] == str(clip) and {t["name"] for t in out["top"]} == {"grow", "shrink", "blink"}
    assert abs(sum(t["prob"] for t in out["top"]) - 1) < 1e-5
    (tmp_path / "names.txt").write_text("grow\nshrink\n")
    assert main(["predict", str(clip_file), str(clip), "--labels-file", str(tmp_path / "names.txt"), "--template",
                 "a video of {}.", "--template", "a {}", *common]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith(f"{clip}: ")
    metrics = tmp_path / "m.json"
    assert main(["eval", str(clip_file), "--zero-shot", *common, f"--data.root={data}", "--data.workers=0",
                 f"--data.test_list={data / 'test.txt'}", f"--data.class_names={data / 'classes.txt'}",
                 "--json", str(metrics)]) == 0  # fmt: skip
    m = json.loads(metrics.read_text())
    assert m["videos"] == 13 and m["protocol"].startswith("4x1x1") and 0 <= m["top1"] <= m["top5"] <= 1
    capsys.readouterr()
    assert main(["eval", str(clip_file), "--zero-shot", *common, f"--data.test_list={data / 'test.txt'}"]) == 2
    assert "zero-shot evaluation needs the class names: set --data.class_names" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(clip), "--template", "a {}"]) == 2
    assert "--template apply to zero-shot classification: add --labels" in capsys.readouterr().err


def test_text_heads_start_from_the_zero_shot_logits(clip_file, video):
    """AIM's adapters are the identity at initialisation: a text head gives the zero-shot logits exactly, a linear
    head started from the text embeddings their ranking (its logits are the cosines times the embedding's norm)."""
    zs = zero_shot_model(clip_file, NAMES, backbone="tiny_clip", overrides=["--model.num_frames=4"])
    cfg = ModelConfig(backbone="tiny_clip", pretrained=str(clip_file), num_frames=4, num_classes=4, dropout=0.0,
                      drop_path_rate=0.0, head="text")  # fmt: skip
    text = build_model(cfg, class_names=NAMES).eval()
    linear = build_model(ModelConfig(**{**cfg.__dict__, "head": "linear", "head_init": "text"}), class_names=NAMES)
    with torch.no_grad():
        want = zs(video)
        torch.testing.assert_close(text(video), want, atol=1e-5, rtol=0)
        got = linear.eval()(video)
    assert torch.equal(got.argmax(-1), want.argmax(-1))
    assert "head.classes" in {n for n, p in text.named_parameters() if p.requires_grad}  # head_train: true
    with pytest.raises(ConfigError, match="model.head=text needs the class names: set data.class_names"):
        build_model(cfg)


def test_training_with_a_text_head_saves_and_reloads(clip_file, data, tmp_path, capsys):
    run = tmp_path / "run"
    args = train_args(data, run, "--model.backbone=tiny_clip", f"--model.pretrained={clip_file}", "--model.head=text",
                      "--model.num_frames=4", "--train.epochs=1", "--train.max_steps_per_epoch=2")  # fmt: skip
    assert main(["train", *args]) == 0
    model, cfg, names = load_model(run / "model")
    again, _, _ = load_model(run / "last.pt")
    clip = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip), again.eval()(clip), atol=1e-6, rtol=0)
    assert cfg.model.head == "text" and len(names) == 13
    report = tmp_path / "bn.json"  # new names for a trained text head: embedded with the CLIP it was built from
    assert main(["eval", str(run / "model"), "--novel", str(data / "test.txt"), str(data / "classes.txt"),
                 "--json", str(report)]) == 0  # fmt: skip
    novel = json.loads(report.read_text())["novel"]
    assert novel["videos"] == 13
    cross = tmp_path / "zs.json"  # cross-dataset zero-shot: the list and names of another dataset (here the same)
    assert main(["eval", str(run / "model"), "--zero-shot", f"--data.test_list={data / 'test.txt'}",
                 f"--data.class_names={data / 'classes.txt'}", "--json", str(cross)]) == 0  # fmt: skip
    assert (
        json.loads(cross.read_text())["top1"] == novel["top1"] and len(json.loads(cross.read_text())["confusion"]) == 13
    )
    clip_path = data / "test" / "grow" / "00000.mp4"
    assert main(["predict", str(run), str(clip_path), "--labels", "grow,shrink", "--json"]) == 0  # re-embedded
    assert {t["name"] for t in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top"]} == {
        "grow",
        "shrink",
    }


def test_base_to_novel_evaluation_reports_the_harmonic_mean(clip_file, data, tmp_path):
    o = tmp_path / "split"
    assert main(["data", "base-novel", str(data / "train.txt"), "--classes", str(data / "classes.txt"), "--lists",
                 str(data / "test.txt"), "--out", str(o)]) == 0  # fmt: skip
    report = tmp_path / "bn.json"
    assert main(["eval", str(clip_file), "--zero-shot", "--backbone", "tiny_clip", "--model.num_frames=4",
                 f"--data.root={data}", "--data.workers=0", f"--data.test_list={o / 'test_base.txt'}",
                 f"--data.class_names={o / 'base_classes.txt'}", "--novel", str(o / "test_novel.txt"),
                 str(o / "novel_classes.txt"), "--json", str(report)]) == 0  # fmt: skip
    r = json.loads(report.read_text())
    assert r["base"]["videos"] == 7 and r["novel"]["videos"] == 6  # 13 classes: the 6 least frequent novel
    b, n = r["base"]["top1"], r["novel"]["top1"]
    assert r["harmonic_mean"] == pytest.approx(0 if b + n == 0 else 2 * b * n / (b + n))
    assert len(r["novel"]["confusion"]) == 6


def test_the_demo_clip_tells_textures_by_name_and_not_order(data):
    """The shipped demo CLIP (text tower pretrained on captions of synthetic still images): the texture clips of the
    test split are classified by their descriptions alone; their image tensors are the demo ViT's, unchanged."""
    from vidapter.data.datasets import read_class_names
    from vidapter.demo.run import DESCRIPTIONS, accuracy_on_test

    names = read_class_names(data / "classes.txt")
    model = zero_shot_model("vidapter:demo-vit", [DESCRIPTIONS[n] for n in names], templates=["{}"],
                            overrides=[f"--data.root={data}", f"--data.test_list={data / 'test.txt'}",
                                       "--data.workers=0"])  # fmt: skip
    metrics = accuracy_on_test(model, model.config, names)
    assert metrics["appearance_accuracy"] == 1.0  # stripes, checkerboard, rings: one test clip each


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].head is None])  # the others bring their own
def test_the_text_head_works_with_every_readout(method, clip_file, video):
    """Every method whose readout is a video feature (EVL's: its decoder's output) ends in the text head, whose
    temperature and class embeddings train beside the method's tensors."""
    adapters = {} if METHODS[method].combines_aim else {"adapters": []}
    sections = {"evl": {"layers": 2}} if method == "evl" else {}  # tiny_clip has 2 blocks
    cfg = ModelConfig(backbone="tiny_clip", pretrained=str(clip_file), num_frames=4, num_classes=4, method=method,
                      head="text", dropout=0.0, drop_path_rate=0.0, sections=sections, **adapters)  # fmt: skip
    model = build_model(cfg, class_names=NAMES).eval()
    with torch.no_grad():
        logits = model(video)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    assert {"head.logit_scale", "head.classes"} <= {n for n, p in model.named_parameters() if p.requires_grad}


def test_a_text_head_reads_its_clip_file_once(clip_file, monkeypatch, tmp_path):
    """The image tower and the text tower come from one read of the file (it can be hundreds of MB), and so does the
    row of a directory that says it."""
    from vidapter.models import pretrained

    reads = []
    real = pretrained._read_checkpoint
    monkeypatch.setattr(pretrained, "_read_checkpoint", lambda *a: reads.append(a[0]) or real(*a))
    zero_shot_model(clip_file, NAMES, backbone="tiny_clip")
    assert reads == [clip_file]
    hf_clip_model(vocab=49408, context=77).save_pretrained(tmp_path)
    reads.clear()
    zero_shot_model(tmp_path, NAMES)  # the row from the file, then both towers
    assert reads == [tmp_path, tmp_path / "model.safetensors"]  # the directory, then its weights file
