"""CLIP's text tokenizer, exact: the byte-level BPE of OpenAI's CLIP (openai/CLIP ``clip/simple_tokenizer.py`` and
``clip.tokenize``), which open_clip reuses and every CLIP-based video method (ViFi-CLIP, X-CLIP, ActionCLIP,
Open-VCLIP) copies unchanged.

The steps: repair the text with ftfy, unescape HTML twice, collapse whitespace, lower-case; split it into words,
single digits and punctuation runs (the two special tokens stay whole); map each piece's UTF-8 bytes to printable
symbols; apply the 48,894 merges in rank order, ``</w>`` marking a word's end. The vocabulary is the 256 byte symbols,
their ``</w>`` forms, one entry per merge and the two special tokens: 49,408 ids, start 49406, end 49407; 0 pads.
The merges file ships in this package (``bpe_simple_vocab_16e6.txt.gz``, MIT, (c) OpenAI; the same file as OpenAI's and
open_clip's, checked by its sha256 when read), so nothing is downloaded.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
from pathlib import Path

import ftfy
import regex
import torch

from vidapter.errors import ConfigError

MERGES_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
MERGES_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
SOT, EOT = 49406, 49407
CONTEXT = 77  # CLIP's context length
_SPLIT = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", regex.IGNORECASE
)


@functools.cache
def byte_symbols() -> dict[int, str]:
    """Every byte as one printable character: the printable Latin-1 bytes as themselves, then the others shifted to
    256+."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {b: chr(b) for b in kept}, 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return symbols  # in this order: the vocabulary's first 256 ids


def clean(text: str) -> str:
    """ftfy's repair, HTML unescaped twice, whitespace collapsed, lower case: what CLIP tokenises."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class Tokenizer:
    """``Tokenizer()(texts)`` -> (N, 77) int64 ids: start, the text's ids, end, zeros. A text longer than the context
    is refused naming it, or with ``truncate=True`` cut to the first 77 ids with the end id last (OpenAI's
    ``truncate=True``; open_clip always truncates so)."""

    def __init__(self, merges_file: str | Path = MERGES_FILE):
        data = Path(merges_file).read_bytes()
        if Path(merges_file) == MERGES_FILE and hashlib.sha256(data).hexdigest() != MERGES_SHA256:
            raise ConfigError(f"{merges_file}: not CLIP's merges file (sha256 differs): reinstall vidapter")
        lines = gzip.decompress(data).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
        symbols = list(byte_symbols().values())
        vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.ids = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self._cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}

    def _bpe(self, piece: str) -> list[str]:
        if piece in self._cache:
            return self._cache[piece].split(" ")
        word = [*piece[:-1], piece[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:], strict=False)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        self._cache[piece] = " ".join(word)
        return word

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, without the start and end ids."""
        symbols = byte_symbols()
        out = []
        for piece in _SPLIT.findall(clean(text)):
            out += [self.ids[t] for t in self._bpe("".join(symbols[b] for b in piece.encode("utf-8")))]
        return out

    def __call__(self, texts: str | list[str], context: int = CONTEXT, truncate: bool = False) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.zeros(len(texts), context, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [SOT, *self.encode(text), EOT]
            if len(ids) > context:
                if not truncate:
                    shown = text if len(text) <= 60 else text[:57] + "..."
                    raise ConfigError(f"text {shown!r} is {len(ids)} tokens with start and end, more than the context "
                                      f"of {context}: shorten it, or truncate")  # fmt: skip
                ids = [*ids[: context - 1], EOT]
            out[row, : len(ids)] = torch.tensor(ids)
        return out


@functools.cache
def tokenizer() -> Tokenizer:
    """The shared tokenizer (reading the merges once)."""
    return Tokenizer()


class SentencePieceTokenizer:
    """SigLIP's tokenizer (Hugging Face ``SiglipTokenizer``, after big_vision): the text lower-cased, ASCII punctuation
    removed and whitespace collapsed (big_vision's ``canonicalize_text``), SentencePiece pieces of the model directory's
    ``spiece.model``, the end id appended, then padded to ``context`` (64) with the pad id, as SigLIP's text tower
    was trained: its feature is read at the last position. Longer texts keep their first ``context - 1`` ids and the
    end id (``truncate``), or are refused. Needs the ``sentencepiece`` package (``pip install vidapter[siglip]``)."""

    def __init__(self, model_file: str | Path, lower: bool = True, eos_id: int = 1, pad_id: int = 1):
        try:
            import sentencepiece
        except ImportError:
            from vidapter.errors import MissingDependency

            raise MissingDependency("SigLIP's tokenizer needs sentencepiece: pip install 'vidapter[siglip]'") from None
        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise ConfigError(f"{self.model_file}: no SentencePiece model (SigLIP's directories hold spiece.model)")
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(self.model_file))
        except (OSError, RuntimeError) as e:
            raise ConfigError(f"{self.model_file}: not a readable SentencePiece model ({e})") from e
        self.lower, self.eos_id, self.pad_id = lower, eos_id, pad_id

    def canonical(self, text: str) -> str:
        import string

        text = text.lower() if self.lower else text
        return " ".join(text.translate(str.maketrans("", "", string.punctuation)).split())

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(self.canonical(text)))

    def __call__(self, texts: str | list[str], context: int = 64, truncate: bool = True) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else texts
        out = torch.full((len(texts), context), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self.encode(text)
            if len(ids) + 1 > context:
                if not truncate:
                    raise ConfigError(f"text {i + 1} ({text[:40]!r}...) is {len(ids) + 1} tokens, over {context}")
                ids = ids[: context - 1]
            ids = [*ids, self.eos_id]
            out[i, : len(ids)] = torch.tensor(ids)
        return out


def canonicalize(text: str) -> str:
    """big_vision's ``canonicalize_text`` (SigLIP's evaluation prompts; open_clip's ``clean="canonicalize"``):
    underscores as spaces, ASCII punctuation removed, lower case, whitespace collapsed."""
    import string

    text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
    return " ".join(text.split())


class JsonTokenizer:
    """SigLIP 2's tokenizer: Gemma's 256k-piece BPE read from the model directory's ``tokenizer.json`` by Hugging
    Face's ``tokenizers`` library (the engine transformers' ``GemmaTokenizer`` runs), with the special ids its
    post-processor adds (SigLIP 2's: no start id, the end id 1 appended) and the padding side and pad token that
    ``tokenizer_config.json`` states (SigLIP 2's: on the right, with 0, to 64). The text is canonicalised first
    (big_vision's rule: lower case, punctuation removed), as open_clip's SigLIP 2 tokenizer does; Hugging Face's
    SigLIP 2 documentation asks for lower-cased labels. A longer text keeps its first ids and the end id, cut as
    transformers cuts. Needs ``tokenizers`` (``pip install vidapter[siglip]``)."""

    def __init__(self, tokenizer_file: str | Path):
        try:
            import tokenizers
        except ImportError:
            from vidapter.errors import MissingDependency

            raise MissingDependency("SigLIP 2's tokenizer needs tokenizers: pip install 'vidapter[siglip]'") from None
        self.tokenizer_file = Path(tokenizer_file)
        if not self.tokenizer_file.is_file():
            raise ConfigError(f"{self.tokenizer_file}: no tokenizer.json (SigLIP 2's directories hold one)")
        try:
            self.tok = tokenizers.Tokenizer.from_file(str(self.tokenizer_file))
        except Exception as e:  # the library's own parse errors (a Rust exception type)
            raise ConfigError(f"{self.tokenizer_file}: not a readable tokenizer.json ({e})") from e
        config_file = self.tokenizer_file.with_name("tokenizer_config.json")
        config = {}
        if config_file.is_file():
            from vidapter.models.pretrained import read_json

            config = read_json(config_file)
        self.padding_side = config.get("padding_side", "right")
        if self.padding_side not in ("left", "right"):
            raise ConfigError(f"{config_file}: padding_side is {self.padding_side!r}, expected 'left' or 'right'")
        pad = _token(config.get("pad_token", "<pad>"))
        self.pad_id = self._id(pad, config_file, "pad_token")
        self.tok.no_padding()
        self.tok.no_truncation()

    def _id(self, token: str, where: Path, field: str) -> int:
        i = self.tok.token_to_id(token)
        if i is None:
            raise ConfigError(f"{where}: {field} {token!r} is not in {self.tokenizer_file.name}'s vocabulary")
        return i

    def __call__(self, texts: str | list[str], context: int = 64, truncate: bool = True) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.full((len(texts), context), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = self.tok.encode(canonicalize(text)).ids  # with the special ids
            if len(ids) > context:
                if not truncate:
                    raise ConfigError(f"text {i + 1} ({text[:40]!r}...) is {len(ids)} tokens, over {context}")
                # as transformers truncates: the text's ids cut so that they and the special ids fit
                self.tok.enable_truncation(max_length=context)
                ids = self.tok.encode(canonicalize(text)).ids
                self.tok.no_truncation()
            row = torch.tensor(ids, dtype=torch.long)
            if self.padding_side == "right":
                out[i, : len(row)] = row
            else:
                out[i, context - len(row) :] = row
        return out


def _token(value) -> str:
    """A special token as tokenizer_config.json writes it: the string, or an AddedToken's ``{"content": ...}``."""
    return value["content"] if isinstance(value, dict) else str(value)
