import json

import numpy as np
import pytest

from grader.execution.exceptions import UntrustedOutputError
from grader.execution.readback import ANSWER_SCHEMA_VERSION, read_load_events, read_outcome, read_untrusted


def _answer(io_dir, call_id, payload):
    (io_dir / "out").mkdir(parents=True, exist_ok=True)
    text = payload if isinstance(payload, str) else json.dumps({"schema_version": ANSWER_SCHEMA_VERSION, **payload})
    (io_dir / "out" / f"{call_id}.json").write_text(text)


def test_arrays_come_back_without_pickles(tmp_path):
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "out" / "c.1.npy", np.arange(6).reshape(2, 3))
    _answer(tmp_path, "c", {"id": "c", "status": "ok", "value": {"__tuple__": [{"__array__": "out/c.1.npy"}, 2]}})
    outcome = read_outcome(tmp_path, "c")
    assert outcome.ok
    array, number = outcome.value
    assert number == 2 and array.shape == (2, 3)


def test_an_object_array_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "out" / "c.1.npy", np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _answer(tmp_path, "c", {"id": "c", "status": "ok", "value": {"__array__": "out/c.1.npy"}})
    outcome = read_outcome(tmp_path, "c")
    assert outcome.status == "crashed" and "could not be read back safely" in outcome.reason


def test_symlinks_out_of_the_exchange_folder_are_not_followed(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"id": "c", "status": "ok", "value": "host file"}))
    (tmp_path / "io" / "out").mkdir(parents=True)
    (tmp_path / "io" / "out" / "c.json").symlink_to(secret)
    assert read_outcome(tmp_path / "io", "c").status == "crashed"
    (tmp_path / "io" / "out" / "d.1.npy").symlink_to(secret)
    with pytest.raises(UntrustedOutputError, match="cannot be opened as a plain file"):
        read_untrusted(tmp_path / "io", "out/d.1.npy", 100)


def test_array_paths_outside_out_are_refused(tmp_path):
    _answer(tmp_path, "c", {"id": "c", "status": "ok", "value": {"__array__": "../../etc/passwd.npy"}})
    assert "not a file of this answer" in read_outcome(tmp_path, "c").reason


def test_oversized_and_malformed_answers(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "big.npy").write_bytes(b"0" * 2000)
    with pytest.raises(UntrustedOutputError, match="over the limit"):
        read_untrusted(tmp_path, "out/big.npy", 1000)
    _answer(tmp_path, "c", {"id": "someone-else", "status": "ok"})
    assert read_outcome(tmp_path, "c").status == "crashed"
    (tmp_path / "out" / "e.json").write_text("{not json")
    assert read_outcome(tmp_path, "e").status == "crashed"


def test_student_errors_are_reported_with_type_message_and_place(tmp_path):
    _answer(tmp_path, "c", {"id": "c", "status": "error",
                            "error": {"type": "ValueError", "message": "bad shape", "where": "nb.py:3"}})
    outcome = read_outcome(tmp_path, "c")
    assert outcome.describe() == "raised ValueError: bad shape (at nb.py:3)"


def test_an_answer_of_another_schema_version_is_refused_with_both_versions(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "c.json").write_text(json.dumps({"schema_version": 99, "id": "c", "status": "ok", "value": 1}))
    outcome = read_outcome(tmp_path, "c")
    assert outcome.status == "crashed" and "schema version 99, not 1" in outcome.reason


def test_deeply_nested_answers_are_refused_not_raised(tmp_path):
    deep = '{"schema_version": 1, "id": "c", "status": "ok", "value": ' + "[" * 100_000 + "]" * 100_000 + "}"
    _answer(tmp_path, "c", deep)
    outcome = read_outcome(tmp_path, "c")
    assert outcome.status == "crashed" and "nests too deeply" in outcome.reason


def test_an_array_named_many_times_is_read_once(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "out" / "c.1.npy", np.zeros((64, 64)))
    _answer(tmp_path, "c", {"id": "c", "status": "ok", "value": [{"__array__": "out/c.1.npy"}] * 5000})
    reads = []
    import grader.execution.readback as readback
    original = readback.read_untrusted
    monkeypatch.setattr(readback, "read_untrusted", lambda *a: reads.append(a[1]) or original(*a))
    outcome = read_outcome(tmp_path, "c")
    assert outcome.ok and len(outcome.value) == 5000
    assert reads.count("out/c.1.npy") == 1


@pytest.mark.parametrize("events", [
    {"events": [{"kind": "error", "cell": "not a number", "ename": ["x"], "evalue": {"a": 1}}, {"kind": "rm -rf"},
                "just a string", {"kind": "skipped", "cell": 3, "reason": "tagged train"}]},
    {"events": "nope"}, [1, 2, 3], {"events": [{"kind": "timeout", "cell": -5}] * 5000},
])
def test_load_events_are_parsed_field_by_field(tmp_path, events):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_load.json").write_text(json.dumps(events))
    parsed = read_load_events(tmp_path)
    assert all(isinstance(e.ename, str) and isinstance(e.evalue, str) and (e.cell is None or e.cell >= 0)
               for e in parsed)
    assert len(parsed) <= 200
    if isinstance(events, dict) and isinstance(events["events"], list) and len(events["events"]) == 4:
        assert [(e.kind, e.cell, e.ename) for e in parsed] == [("error", None, ""), ("skipped", 3, "")]
