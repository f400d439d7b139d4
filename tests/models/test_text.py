"""CLIP's text tower, image projection and logit scale from an open_clip file: the same text and image embeddings
as open_clip's ``encode_text`` and ``encode_image`` on random weights (fp32)."""

from __future__ import annotations

import pytest
import torch
from peers import hf_clip_model, open_clip_model, openai_release_archive, randomize_

from vidapter.models.backbones import TextFacts
from vidapter.models.pretrained import WeightsError, load_backbone
from vidapter.models.text import load_clip_text
from vidapter.models.vit import build_vit


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "open_clip.pt"
    torch.save({"state_dict": open_clip_model().state_dict()}, path)
    return path


def test_text_and_image_embeddings_equal_open_clips(clip_file, images):
    peer = open_clip_model()
    ours = load_clip_text(clip_file, heads=2).eval()
    ids = _ids()  # the end token 99: the largest id, where pooling reads
    ids[0, 4:] = 0  # padding after it
    vit = build_vit("tiny_clip").eval()
    load_backbone(vit, str(clip_file))
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_text(ids), peer.encode_text(ids), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.encode_image_features(vit(images)), peer.encode_image(images), atol=1e-5,
                                   rtol=0)  # fmt: skip
    assert ours.logit_scale.item() == peer.logit_scale.item()


def test_tokens_after_the_end_do_not_change_the_embedding(clip_file):
    ours = load_clip_text(clip_file, heads=2).eval()
    ids = torch.tensor([[5, 6, 99, 0, 0, 0], [5, 6, 99, 7, 8, 9]])
    with torch.no_grad():
        out = ours.encode_text(ids)
        other = ours.encode_text(torch.tensor([[5, 7, 99, 0, 0, 0]]))
    torch.testing.assert_close(out[0], out[1], atol=1e-6, rtol=0)  # causal: what follows the end token is unseen
    assert (other[0] - out[0]).abs().max() > 1e-3


def _ids(n: int = 5, length: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 99, (n, length), generator=g)
    ids[torch.arange(n), torch.tensor([3, 15, 1, 7, 9])[:n]] = 99
    return ids


def test_hf_clipmodel_directory_equals_transformers(tmp_path, images):
    """A Hugging Face CLIPModel directory: text features equal get_text_features, the projected image features
    get_image_features; heads and activation come from its config.json."""
    peer = hf_clip_model()
    peer.save_pretrained(tmp_path)
    ours = load_clip_text(tmp_path).eval()
    assert ours.text.facts.heads == 2 and ours.text.facts.act == "quick_gelu"
    vit = build_vit("tiny_clip").eval()
    load_backbone(vit, str(tmp_path))
    ids = _ids()
    with torch.no_grad():
        want_text = peer.get_text_features(input_ids=ids)
        want_image = peer.get_image_features(pixel_values=images)
        want_text, want_image = (getattr(w, "pooler_output", w) for w in (want_text, want_image))
        torch.testing.assert_close(ours.encode_text(ids), want_text, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.encode_image_features(vit(images)), want_image, atol=1e-5, rtol=0)
    assert ours.logit_scale.item() == peer.logit_scale.item()


def test_hf_config_that_disagrees_with_the_row_is_named(tmp_path):
    hf_clip_model().save_pretrained(tmp_path)
    with pytest.raises(WeightsError, match=r"config.json: text_config.num_attention_heads is 2, but .* has 4"):
        load_clip_text(tmp_path, TextFacts(32, 1, 4, 32, context=16, vocab=100))


def test_openai_torchscript_archive_gives_the_same_text_features(tmp_path, images, monkeypatch):
    """OpenAI's releases are TorchScript archives in fp16: read as data (torch.jit.load is never called), the text
    tower gives the fp16 weights' features."""
    path = tmp_path / "ViT-B-16.pt"
    openai_release_archive(path, images)
    monkeypatch.setattr(torch.jit, "load", None)
    ours = load_clip_text(path, heads=2).eval()
    peer = open_clip_model().half().float()  # the weights the archive holds
    ids = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_text(ids), peer.encode_text(ids), atol=1e-5, rtol=0)


def test_a_file_without_a_text_tower_is_named(tmp_path):
    path = tmp_path / "visual.pt"
    torch.save(open_clip_model().visual.state_dict(), path)
    with pytest.raises(WeightsError, match="visual.pt: no text tower in this file"):
        load_clip_text(path)


def test_a_text_tower_of_another_size_is_named(clip_file):
    shapes = r"wrong shape: text.pos_embed \(16, 32\) != \(77, 32\)"
    with pytest.raises(WeightsError, match=r"its text tower does not fit .*" + shapes):
        load_clip_text(clip_file, "tiny_clip")


def test_zero_shot_logits_are_clips_ensemble_over_the_frames_mean(clip_file, video):
    """ViFi-CLIP's video embedding (mean of the projected frames, one norm) against CLIP's ensemble of templates,
    each computed here from open_clip's own encoders; the ids from a tokenizer of the tiny vocabulary."""
    import torch.nn.functional as F

    from vidapter.models.text import KINETICS_TEMPLATES, class_embeddings, video_embedding, zero_shot_logits

    assert len(KINETICS_TEMPLATES) == 28 and KINETICS_TEMPLATES[10] == "a video of a person doing {}."
    assert KINETICS_TEMPLATES[21] == "a demonstration of {}."

    def tiny_tokenize(texts, context):  # a deterministic stand-in for the 100-token vocabulary of the tiny model
        out = torch.zeros(len(texts), context, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = [1 + sum(map(ord, w)) % 97 for w in t.split()][: context - 1] + [99]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    peer, ours = open_clip_model(), load_clip_text(clip_file, heads=2).eval()
    names, templates = ["juggling", "archery", "tai chi"], KINETICS_TEMPLATES[:5]
    vit = build_vit("tiny_clip").eval()
    load_backbone(vit, str(clip_file))
    b, t = video.shape[0], video.shape[2]
    frames = video.transpose(1, 2).flatten(0, 1)
    with torch.no_grad():
        got = zero_shot_logits(ours, video_embedding(ours, vit(frames).view(b, t, -1)),
                               class_embeddings(ours, names, templates, tokenize=tiny_tokenize))  # fmt: skip
        v = F.normalize(peer.encode_image(frames).view(b, t, -1).mean(1), dim=-1)
        w = torch.stack([F.normalize(F.normalize(peer.encode_text(tiny_tokenize([x.format(n) for x in templates], 16)),
                                                 dim=-1).mean(0), dim=-1) for n in names])  # fmt: skip
        want = peer.logit_scale.exp() * v @ w.T
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_eva_clip_and_open_clip_custom_text_files(tmp_path):
    """EVA-CLIP's originals and open_clip's custom-text models keep the text tower under "text." and project images
    with a Linear with bias (``visual.head``; open_clip's timm trunk: ``visual.trunk.head``): the text features equal
    open_clip's TextTransformer (GELU), the image embeddings the Linear's."""
    from open_clip.transformer import TextTransformer

    peer = randomize_(TextTransformer(context_length=77, vocab_size=49408, width=32, heads=2, layers=1,
                                      output_dim=32), 0).eval()  # fmt: skip
    head = randomize_(torch.nn.Linear(64, 32), 1)
    g = torch.Generator().manual_seed(2)
    ids = torch.zeros(3, 77, dtype=torch.long)  # open_clip's text transformer reads the whole context
    ids[:, :12] = torch.randint(1, 49000, (3, 12), generator=g)
    ids[:, 7], ids[:, 8:12] = 49407, 0
    feats = torch.randn(3, 64, generator=g)
    for visual in ("visual.head", "visual.trunk.head"):
        sd = {**{f"text.{k}": v for k, v in peer.state_dict().items()}, f"{visual}.weight": head.weight,
              f"{visual}.bias": head.bias, "logit_scale": torch.tensor(4.6), "visual.blocks.0.norm1.weight":
              torch.ones(64)}  # fmt: skip
        torch.save(sd, tmp_path / "eva.pt")
        ours = load_clip_text(tmp_path / "eva.pt", "tiny_eva02").eval()
        with torch.no_grad():
            torch.testing.assert_close(ours.encode_text(ids), peer(ids), atol=1e-5, rtol=0)
            torch.testing.assert_close(ours.encode_image_features(feats), head(feats), atol=1e-6, rtol=0)
