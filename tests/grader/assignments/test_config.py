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


def test_the_suite_agrees_with_the_declared_parts(assignment):
    from grader.assignments import check_suite
    from grader.suites import load_suite

    suite = load_suite(assignment.suite_dir, assignment)
    check_suite(assignment, suite)
    assert sum(p.points for p in assignment.parts) == sum(t.points for t in suite)
    assert sum(r.points for r in assignment.rubric) > 0


def test_points_or_visibility_drifting_from_the_parts_is_named(assignment):
    import dataclasses

    from grader.assignments import check_suite
    from grader.suites import load_suite

    suite = load_suite(assignment.suite_dir, assignment)
    extra = dataclasses.replace(suite[0], id="architecture.extra", points=5)
    with pytest.raises(AssignmentError, match="part 'architecture' declares 16 points but its tests add up to 21"):
        check_suite(assignment, suite + [extra])
    hidden = dataclasses.replace(suite[0], id="architecture.secret", points=0, visibility="after_due_date")
    with pytest.raises(AssignmentError, match="is after_due_date but its part 'architecture' is visible"):
        check_suite(assignment, suite + [hidden])
