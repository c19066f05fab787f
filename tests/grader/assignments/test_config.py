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
    ('name = "x"\n[clases]\nnames = ["a", "b"]\n', "unknown section clases; valid keys: name, "),
    ('name = "x"\n[classes]\nname = ["a", "b"]\n', "unknown key classes.name; valid keys in \\[classes\\]: names, colors"),
    ('name = "x"\n[classes]\nnames = "a b"\n', "classes.names must be a list of strings"),
    ('name = "x"\n[classes]\nnames = ["a", "b"]\ncolors = ["#000000"]\n', "1 colours for 2 classes"),
    ('name = "x"\n[classes]\nnames = ["a", "b"]\ncolors = ["black", "#ffffff"]\n', "'black' is not a colour"),
    ('name = "x"\n[classes]\nnames = ["a", "a"]\n', "has a name twice"),
    ('name = "x"\n[classes]\nnames = ["a", "b"]\n[heldout]\nclasses = 3\n', "2 names but heldout.classes is 3"),
    ('name = "x"\n[report]\nheldout = "h.x"\n', "unknown key report.heldout; valid keys in \\[report\\]: heldout_test"),
    ('name = "x"\n[report]\noverlay_test = 3\n', "report.overlay_test must be a string"),
    ('name = "x"\nreport = "r"\n', "report must be a table"),
    ('name = "x"\n[submission]\nmodel = ["m.pt"]\n', "unknown key submission.model; valid keys in \\[submission\\]: models"),
    ('name = "x"\n[submission]\nmodels = "m.pt"\n', "submission.models must be a list of strings"),
    ('name = "x"\n[[parts]]\ntag = "a"\nbonus = "yes"\n', "parts.bonus must be true or false"),
    ('name = "x"\nsuite_settings = 3\n', "suite_settings must be a table"),
    ('name = "x"\nparts = "all"\n', "parts must be a list of tables"),
])
def test_bad_assignment_toml_names_the_key_and_file(tmp_path, text, message):
    (tmp_path / "assignment.toml").write_text(text)
    with pytest.raises(AssignmentError, match=message) as info:
        load_assignment(tmp_path)
    assert "assignment.toml" in str(info.value)


def _assignment_folder(tmp_path, text):
    (tmp_path / "assignments" / "demo").mkdir(parents=True)
    (tmp_path / "test_suites" / "demo").mkdir(parents=True)
    (tmp_path / "assignments" / "demo" / "assignment.toml").write_text(text)
    return tmp_path / "assignments" / "demo"


def test_the_suite_of_assignments_name_is_test_suites_name(tmp_path):
    assignment = load_assignment(_assignment_folder(tmp_path, 'name = "other_name"\n'))
    assert assignment.suite_dir == (tmp_path / "test_suites" / "demo").resolve()
    (tmp_path / "test_suites" / "demo").rmdir()
    with pytest.raises(AssignmentError, match="by convention the suite of assignments/NAME is test_suites/NAME"):
        load_assignment(tmp_path / "assignments" / "demo")


def test_classes_report_and_suite_settings_are_read(tmp_path):
    text = ('name = "demo"\n[classes]\nnames = ["sky", "tree"]\n[report]\noverlay_test = "o.x"\n'
            '[suite_settings]\ntolerance = 0.02\nmodels = { small = { reference_dice = 0.8 } }\n')
    assignment = load_assignment(_assignment_folder(tmp_path, text))
    assert assignment.class_names == ("sky", "tree") and assignment.heldout.classes == 2
    assert assignment.class_colors == ("#dddddd", "#e69f00")  # the palette, in order
    assert assignment.report.overlay_test == "o.x" and assignment.report.heldout_test == ""
    assert assignment.suite_settings == {"tolerance": 0.02, "models": {"small": {"reference_dice": 0.8}}}


def test_without_classes_the_labels_are_numbered(tmp_path):
    assignment = load_assignment(_assignment_folder(tmp_path, 'name = "demo"\n'))
    assert assignment.class_names == ("class 0", "class 1", "class 2") and assignment.suite_settings == {}


def test_the_first_assignment_names_its_classes_and_featured_tests(assignment):
    assert assignment.class_names == ("background", "cytoplasm", "nucleus")
    assert assignment.class_colors == ("#dddddd", "#e69f00", "#0072b2")
    assert assignment.report.heldout_test == "heldout.mean_foreground_dice"
    assert assignment.report.overlay_test == "overlay.contract"


def test_a_report_test_the_suite_lacks_is_named_with_the_valid_choices(assignment):
    import dataclasses

    from grader.assignments import check_suite
    from grader.assignments.config import Report
    from grader.suites import load_suite

    suite = load_suite(assignment.suite_dir, assignment)
    typo = dataclasses.replace(assignment, report=Report(heldout_test="heldout.mean_dice"))
    with pytest.raises(AssignmentError) as info:
        check_suite(typo, suite)
    message = str(info.value)
    assert "report.heldout_test 'heldout.mean_dice' is not a test of the suite" in message
    assert "valid choices: " in message and "heldout.mean_foreground_dice" in message
    public = [t for t in suite if t.visibility == "visible"]
    check_suite(assignment, public, complete=False)  # a self-check loads no hidden test: not an error


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


def test_optional_parts_and_the_files_beside_the_notebook(tmp_path):
    folder = _assignment_folder(tmp_path, 'name = "x"\n[submission]\nmodels = ["a.pt", "b.pt"]\nanswer_file = "answer.md"\n'
                                          '[[parts]]\ntag = "core"\npoints = 4\n[[parts]]\ntag = "extra"\npoints = 2\n'
                                          'bonus = true\n')
    assignment = load_assignment(folder)
    assert assignment.submission.models == ("a.pt", "b.pt") and assignment.submission.answer_file == "answer.md"
    assert assignment.bonus_tags == {"extra"}
