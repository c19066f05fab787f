import json

import numpy as np
import pytest

from grader.execution.exceptions import UntrustedOutputError
from grader.execution.readback import read_outcome, read_untrusted


def _answer(io_dir, call_id, payload):
    (io_dir / "out").mkdir(parents=True, exist_ok=True)
    (io_dir / "out" / f"{call_id}.json").write_text(json.dumps(payload))


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
    assert "not a file of the exchange folder" in read_outcome(tmp_path, "c").reason


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
