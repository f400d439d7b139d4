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
