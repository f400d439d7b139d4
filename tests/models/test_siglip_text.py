"""SigLIP's text side from a Hugging Face SiglipModel directory: its tokenizer equals transformers' SiglipTokenizer
on a SentencePiece model trained here, the text features equal get_text_features, and zero-shot logits equal
SiglipModel's own (exp(scale) x cosine + bias), with sigmoid scores."""

from __future__ import annotations

import shutil

import pytest
import torch
from peers import DEPTH, HEADS, PATCH, SIZE, WIDTH, randomize_

pytest.importorskip("sentencepiece")

TEXTS = ["A photo of a CAT!", "juggling, balls", "café au lait.", "  tai   chi  ", "xyz qq",
         "a video of a person doing push-ups.", "word " * 70, "it's o'clock"]  # fmt: skip


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    """A tiny SiglipModel (the tiny_siglip row's towers) saved with a 40-piece SentencePiece model."""
    import sentencepiece as spm
    from transformers import SiglipConfig, SiglipModel

    d = tmp_path_factory.mktemp("siglip")
    corpus = d / "corpus.txt"
    lines = ["a photo of a cat", "juggling balls in the park", "archery practice", "tai chi at dawn",
             "playing the violin", "café au lait", "a video of a person doing push ups", "riding a bike", "swimming",
             "dancing ballet"]  # fmt: skip
    corpus.write_text("\n".join(lines * 30))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(d / "spiece"), vocab_size=40, pad_id=0,
                                   eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0, minloglevel=2)  # fmt: skip
    vision = dict(hidden_size=WIDTH, intermediate_size=4 * WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
                  patch_size=PATCH, image_size=SIZE)  # fmt: skip
    text = dict(hidden_size=WIDTH, intermediate_size=4 * WIDTH, num_hidden_layers=1, num_attention_heads=2,
                vocab_size=40, max_position_embeddings=64)  # fmt: skip
    model = randomize_(SiglipModel(SiglipConfig(vision_config=vision, text_config=text)), 0).eval()
    out = d / "model"
    model.save_pretrained(out)
    shutil.copy(d / "spiece.model", out / "spiece.model")
    return out


def test_tokenizer_equals_transformers(siglip_dir):
    from transformers import SiglipTokenizer

    from vidapter.models.tokenizer import SentencePieceTokenizer

    peer, ours = SiglipTokenizer(vocab_file=str(siglip_dir / "spiece.model")), SentencePieceTokenizer(
        siglip_dir / "spiece.model")  # fmt: skip
    want = torch.tensor(peer(TEXTS, padding="max_length", max_length=64, truncation=True)["input_ids"])
    assert torch.equal(ours(TEXTS), want)  # lower-cased, punctuation gone, end id 1, padded with 1, truncated


def test_text_features_and_zero_shot_logits_equal_siglips(siglip_dir, images):
    from transformers import SiglipModel

    from vidapter.models.text import load_clip_text
    from vidapter.zeroshot import clip_row, zero_shot_model

    peer = SiglipModel.from_pretrained(siglip_dir).eval()
    ours = load_clip_text(siglip_dir).eval()
    assert ours.text.facts.pool == "last" and not ours.text.facts.causal and clip_row(str(siglip_dir)) == "tiny_siglip"
    names = ["cat", "juggling", "tai chi"]
    ids = ours.tokenize([f"a photo of a {n}." for n in names], context=64)
    with torch.no_grad():
        want_text = peer.get_text_features(input_ids=ids)
        torch.testing.assert_close(ours.encode_text(ids), getattr(want_text, "pooler_output", want_text), atol=1e-5,
                                   rtol=0)  # fmt: skip
        want = peer(input_ids=ids, pixel_values=images).logits_per_image  # exp(scale) x cosine + bias
    model = zero_shot_model(siglip_dir, names, templates=["a photo of a {}."], overrides=["--model.num_frames=1"])
    with torch.no_grad():
        torch.testing.assert_close(model(images.unsqueeze(2)), want, atol=1e-5, rtol=0)  # one frame per clip
    assert model.head.sigmoid and model.head.logit_bias.item() == pytest.approx(peer.logit_bias.item())


def test_published_siglip_names_bring_their_tokenizer(tmp_path, monkeypatch):
    from vidapter.models.backbones import WEIGHTS
    from vidapter.models.pretrained import WeightsError, companion_file, resolve_weights

    name = "hf:google/siglip-base-patch16-224"
    monkeypatch.setenv("VIDAPTER_CACHE", str(tmp_path))
    (tmp_path / WEIGHTS[name].filename).write_bytes(b"")  # the weights are cached, the tokenizer not yet
    spiece = tmp_path / "google--siglip-base-patch16-224--spiece.model"
    with pytest.raises(WeightsError, match="download https://huggingface.co/google/siglip-base-patch16-224/resolve/"
                       f"main/spiece.model and place it at {spiece}"):  # fmt: skip
        resolve_weights(name)
    spiece.write_bytes(b"")
    path = resolve_weights(name)
    assert path == tmp_path / WEIGHTS[name].filename and companion_file(name, path, "spiece.model") == spiece
    assert WEIGHTS["hf:google/siglip2-base-patch16-224"].companions == ("tokenizer.json", "tokenizer_config.json")


@pytest.fixture(scope="module")
def siglip2_dir(siglip_dir, tmp_path_factory):
    """The same SiglipModel saved as SigLIP 2's releases are: Gemma's tokenizer (a 40-entry BPE with Gemma's special
    ids pad 0, end 1, start 2, the end id appended) in tokenizer.json and tokenizer_config.json, no spiece.model."""
    import json

    from transformers import GemmaTokenizer

    special = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {t: i for i, t in enumerate([*special, "▁", *"abcdefghijklmnopqrstuvwxyz"])}
    merges = [("▁", "a"), ("▁", "p"), ("l", "a"), ("i", "n"), ("in", "g"), ("▁p", "la"), ("▁pla", "y"), ("h", "i")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    assert len(vocab) == 40  # the tiny_siglip row's vocabulary size
    out = tmp_path_factory.mktemp("siglip2") / "model"
    shutil.copytree(siglip_dir, out, ignore=shutil.ignore_patterns("spiece.model"))
    GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=False, add_eos_token=True).save_pretrained(out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.update(add_bos_token=False, add_eos_token=True, padding_side="right")  # as SigLIP 2's file says
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def test_siglip2_gemma_tokenizer_equals_transformers_and_open_clip(siglip2_dir):
    """Gemma's tokenizer from tokenizer.json: the ids of transformers' tokenizer on the canonicalised texts (SigLIP 2
    was trained lower-cased) and of open_clip's SigLIP 2 tokenizer (``clean="canonicalize"``), padded to 64."""
    from open_clip.tokenizer import HFTokenizer
    from transformers import AutoTokenizer

    from vidapter.models.tokenizer import JsonTokenizer, canonicalize

    ours = JsonTokenizer(siglip2_dir / "tokenizer.json")(TEXTS)
    peer = AutoTokenizer.from_pretrained(siglip2_dir)
    want = peer([canonicalize(t) for t in TEXTS], padding="max_length", max_length=64, truncation=True,
                return_tensors="pt").input_ids  # fmt: skip
    assert torch.equal(ours, want) and torch.equal(ours, HFTokenizer(str(siglip2_dir), 64, clean="canonicalize")(TEXTS))
    # "a photo of a cat": a ▁p h o t o ▁ o f ▁a ▁ c a t <eos> <pad> (Gemma adds no leading ▁)
    assert ours[0, :16].tolist() == [6, 33, 13, 20, 25, 20, 5, 20, 11, 32, 5, 8, 6, 25, 1, 0]
    assert (ours[:, -1] == 1).sum() == 1  # the text over 64 ids: truncated with the end id last
    assert ours[1].tolist().count(1) == 1 and ours[1, -1] == 0  # one end id, then Gemma's pad 0


def test_siglip2_directory_zero_shot_equals_siglipmodel(siglip2_dir, images):
    """A SigLIP 2 directory (no spiece.model): the text tower reads its Gemma tokenizer; logits equal SiglipModel's on
    the ids transformers' tokenizer gives."""
    from transformers import AutoTokenizer, SiglipModel

    from vidapter.models.tokenizer import JsonTokenizer, canonicalize
    from vidapter.zeroshot import zero_shot_model

    names = ["playing", "hiking"]
    model = zero_shot_model(siglip2_dir, names, templates=["a photo of {}."], overrides=["--model.num_frames=1"])
    peer = SiglipModel.from_pretrained(siglip2_dir).eval()
    ids = AutoTokenizer.from_pretrained(siglip2_dir)(
        [canonicalize(f"a photo of {n}.") for n in names], padding="max_length", max_length=64, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        want = peer(input_ids=ids, pixel_values=images).logits_per_image
        torch.testing.assert_close(model(images.unsqueeze(2)), want, atol=1e-5, rtol=0)
    from vidapter.models.text import load_clip_text

    assert isinstance(load_clip_text(siglip2_dir).tokenize, JsonTokenizer)
