"""Transcript readers: JSON Lines, JSON, CSV, STC-3; errors name file, line and field."""

import json

import pytest

from grader.readers import detect_format, read_file, read_files
from grader.types import ErrorRecord, Transcript

GOOD = {"id": "c1", "turns": [{"speaker": "customer", "text": "在吗"}, {"speaker": "agent", "text": "在的，亲"}]}


def write_lines(path, *objs):
    path.write_text("\n".join(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs) + "\n", encoding="utf-8")
    return path


def items(path, fmt=None):
    return [p.item for p in read_files([path], fmt)]


def test_jsonl_bad_neighbours_do_not_stop_the_batch(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", GOOD,
                       {"id": "c2", "turns": []},
                       {"id": "c3", "turns": [{"speaker": "robot", "text": "hi"}]},
                       "{not json",
                       dict(GOOD, id="c5"))
    out = items(path)
    assert [type(x).__name__ for x in out] == ["Transcript", "ErrorRecord", "ErrorRecord", "ErrorRecord", "Transcript"]
    assert out[1].error.field == "turns" and "line 2" in out[1].error.message and str(path) in out[1].error.message
    assert out[2].error.field == "turns.0.speaker" and "turns.0.speaker" in out[2].error.message and out[2].id == "c3"
    assert out[3].error.code == "bad_json" and out[3].id is None and "line 4" in out[3].error.message


def test_unknown_fields_are_accepted_and_labels_validated(tmp_path):
    conv = dict(GOOD, split="train", extra={"x": 1})
    conv["turns"] = [dict(conv["turns"][0]), dict(conv["turns"][1], labels=["greeting"], asr_confidence=0.8)]
    [t] = items(write_lines(tmp_path / "a.jsonl", conv))
    assert isinstance(t, Transcript) and t.turns[1].labels == ["greeting"] and t.split == "train"
    conv["turns"][1]["labels"] = ["hug"]
    [e] = items(write_lines(tmp_path / "b.jsonl", conv))
    assert isinstance(e, ErrorRecord) and e.error.field == "turns.1.labels"


def test_duplicate_id_in_batch(tmp_path):
    out = items(write_lines(tmp_path / "d.jsonl", GOOD, GOOD))
    assert isinstance(out[1], ErrorRecord) and out[1].error.code == "duplicate_id" and out[1].error.field == "id"


def test_end_before_start_rejected(tmp_path):
    conv = {"id": "t", "turns": [{"speaker": "agent", "text": "喂", "start": 5, "end": 2}]}
    [e] = items(write_lines(tmp_path / "t.jsonl", conv))
    assert e.error.field == "turns.0"


def test_json_array_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([GOOD, dict(GOOD, id="c2")]), encoding="utf-8")
    assert [t.id for t in items(path)] == ["c1", "c2"]


def test_text_is_normalised(tmp_path):
    conv = {"id": "n", "turns": [{"speaker": "agent", "text": "  您好　 请问\u200b有什么可以帮您😊 "}]}
    [t] = items(write_lines(tmp_path / "n.jsonl", conv))
    assert t.turns[0].text == "您好 请问有什么可以帮您😊"


def test_csv_rows_grouped_by_conversation(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('id,speaker,text,start,end\nc1,customer,"在吗,在吗",0,1.5\nc1,agent,在的,2,3\n'
                    'c2,agent,您好,,\nc2,bot,hi,,\nc3,customer,你好,x,\n', encoding="utf-8")
    out = items(path)
    assert detect_format(path) == "csv"
    assert out[0].turns[0].text == "在吗,在吗" and out[0].turns[1].start == 2.0
    assert isinstance(out[1], ErrorRecord) and out[1].error.field == "turns.1.speaker" and out[1].id == "c2"
    assert isinstance(out[2], ErrorRecord) and out[2].error.field == "turns.0.start"


def test_csv_missing_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("conversation,who,words\n1,agent,hi\n", encoding="utf-8")
    [e] = items(path)
    assert e.error.code == "bad_csv" and "id" in e.error.message


def test_stc3_detected_and_converted(tmp_path):
    dia = {"id": "1", "turns": [{"sender": "customer", "utterances": ["网络不好", "怎么办"]},
                                {"sender": "helpdesk", "utterances": ["您好，请私信"]}], "annotations": []}
    path = write_lines(tmp_path / "s.jsonl", dia)
    assert detect_format(path) == "stc3"
    [t] = items(path)
    assert t.turns[0].text == "网络不好\n怎么办" and t.turns[1].speaker == "agent"


def test_stc3_wrong_sender_names_field(tmp_path):
    dia = {"id": "2", "turns": [{"sender": "bot", "utterances": ["hi"]}]}
    [e] = items(write_lines(tmp_path / "s.jsonl", dia), "stc3")
    assert e.error.field == "turns.0.speaker"


def test_unopenable_file_raises(tmp_path):
    with pytest.raises(OSError):
        list(read_file(tmp_path / "missing.jsonl"))


def test_stc3_test_split_reads_without_errors(stc3_dir):
    out = items(stc3_dir / "test.jsonl")
    assert len(out) == 679 and all(isinstance(x, Transcript) for x in out)
