import pytest

from grader.assignments import AssignmentError, Heldout, load_assignment


def test_the_default_assignment_loads(assignment):
    assert assignment.name == "unet_urothelial"
    assert assignment.suite_dir.name == "unet_urothelial" and assignment.suite_dir.is_dir()
    assert [p.tag for p in assignment.parts] == ["data", "architecture", "metrics", "loss", "heldout", "overlay"]
    assert any(s[0] % 32 or s[1] % 32 for s in assignment.heldout.sizes)


@pytest.mark.parametrize("text,message", [
    ('name = "x"\ncolour = 1\n', "unknown key colour"),
    ('name = "x"\n[time]\nload_seconds = "long"\n', "time.load_seconds must be a number"),
    ('name = "x"\ngpu = "yes"\n', "gpu must be true or false"),
    ('name = "x"\n[heldout]\nsede = 3\n', "unknown key heldout.sede"),
    ('title = "no name"\n', "name is required"),
    ('name = "x"\nsuite = "nowhere"\n', "the suite folder"),
    ('name = = "x"\n', "not valid TOML"),
])
def test_bad_assignment_toml_names_the_key_and_file(tmp_path, text, message):
    (tmp_path / "assignment.toml").write_text(text)
    with pytest.raises(AssignmentError, match=message) as info:
        load_assignment(tmp_path)
    assert "assignment.toml" in str(info.value)


def test_a_folder_without_assignment_toml(tmp_path):
    with pytest.raises(AssignmentError, match="no assignment.toml here"):
        load_assignment(tmp_path)


@pytest.mark.parametrize("dice,credit", [(0.90, 1.0), (0.95 * 0.8, 1.0), (0.5 * 0.8, 0.0), (0.3, 0.0),
                                         (0.725 * 0.8, 0.5)])
def test_the_heldout_curve(dice, credit):
    curve = Heldout(reference_dice=0.8, full_fraction=0.95, floor_fraction=0.5)
    assert curve.credit(dice) == pytest.approx(credit)
