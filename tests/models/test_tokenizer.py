"""CLIP's tokenizer gives OpenAI's ids: a golden table (ids from OpenAI's own tokenizer) and open_clip's tokenizer
on names with accents, other scripts, digits, punctuation, HTML entities and more tokens than the context."""

from __future__ import annotations

import pytest
import torch

from vidapter.errors import ConfigError
from vidapter.models.tokenizer import EOT, SOT, Tokenizer, tokenizer

# OpenAI's clip/simple_tokenizer.py, run on these texts (padding zeros left out)
GOLDEN = {
    "a photo of a abseiling.": [49406, 320, 1125, 539, 320, 596, 567, 3299, 269, 49407],
    "a photo of a ApplyEyeMakeup.": [49406, 320, 1125, 539, 320, 882, 75, 693, 693, 5853, 269, 49407],
    "Apply Eye Makeup": [49406, 4356, 3272, 5853, 49407],
    "a video of a person practicing archery.": [49406, 320, 1455, 539, 320, 2533, 12750, 23935, 269, 49407],
    "backflip (human)": [49406, 1663, 11035, 263, 2751, 264, 49407],
    "Pouring something into something": [49406, 16098, 2006, 1095, 2006, 49407],
    "  Hello   World  ": [49406, 3306, 1002, 49407],
    "Hello, World!": [49406, 3306, 267, 1002, 256, 49407],
    "it's": [49406, 585, 568, 49407],
    "&amp;": [49406, 261, 49407],
    "cafÃ©": [49406, 15304, 49407],  # mojibake, repaired by ftfy: "café"
    "hi <|endoftext|>": [49406, 1883, 49407, 49407],
}

OTHERS = ["playing ukulele", "Ölmalerei üben", "crème brûlée", "太极拳", "ЙОГА", "kick 123 balls", "😀 dancing",
          "passing American football (not in game)", "pull ups", "tai-chi!!", "jumping jacks?? x2", "naïve  café",
          "Putting something that can't roll onto a slanted surface, so it stays where it is"]  # fmt: skip


@pytest.mark.parametrize("text", list(GOLDEN))
def test_ids_are_openais(text):
    ids = tokenizer()(text)
    assert ids.shape == (1, 77) and ids.dtype == torch.long
    want = GOLDEN[text]
    assert ids[0, : len(want)].tolist() == want and not ids[0, len(want) :].any()


def test_ids_are_open_clips_and_long_texts_truncate_as_its_do():
    from open_clip.tokenizer import SimpleTokenizer

    theirs = SimpleTokenizer()
    long = " ".join(["juggling soccer balls"] * 30)
    texts = [*OTHERS, long]
    torch.testing.assert_close(tokenizer()(texts, truncate=True), theirs(texts), rtol=0, atol=0)
    cut = tokenizer()(long, truncate=True)[0]
    assert cut[0] == SOT and cut[-1] == EOT and cut.count_nonzero() == 77
    with pytest.raises(ConfigError, match=r"text 'juggling soccer .* is 122 tokens with start and end, more than the "):
        tokenizer()(long)


def test_the_merges_file_is_checked(tmp_path):
    import gzip

    fake = tmp_path / "bpe.txt.gz"
    fake.write_bytes(gzip.compress(b"header\nh i</w>\n"))
    mine = Tokenizer(fake)  # another merges file, read as given: one merge
    assert mine.encode("hi") == [mine.ids["hi</w>"]] and mine.encode("ih") == [mine.ids["i"], mine.ids["h</w>"]]
    assert tokenizer().encode("hi") == [1883] and len(tokenizer().ids) == 49408
