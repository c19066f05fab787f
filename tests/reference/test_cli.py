
from reference.cli import main


def test_data_command_writes_the_embedded_dataset(tmp_path, capsys):
    assert main(["data", "--out", str(tmp_path), "--seed", "4"]) == 0
    assert "wrote 72 images" in capsys.readouterr().out
    assert len(list((tmp_path / "train" / "images").glob("*.png"))) == 48


def test_bad_config_and_override_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "--config", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown config 'huge'; choose one of smoke, full" in capsys.readouterr().err
    assert main(["train", "--config", "smoke", "--out", str(tmp_path), "--set", "epochs=many"]) == 2
    assert "--set epochs=many: expected a int" in capsys.readouterr().err
    assert main(["train", "--config", "smoke", "--out", str(tmp_path), "--set", "colour=red"]) == 2
    assert "expected KEY=VALUE with KEY one of arch, encoder" in capsys.readouterr().err


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "nowhere")]) == 2
    assert "expected folders train/images and train/masks" in capsys.readouterr().err


def test_baseline_command_prints_a_table(tiny_dataset, capsys):
    assert main(["baseline", "--data", str(tiny_dataset)]) == 0
    out = capsys.readouterr().out
    assert "otsu" in out and "kmeans" in out and "mean fg" in out
