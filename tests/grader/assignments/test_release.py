"""The student release: stubs where solutions were, nothing hidden, and it grades to zero cleanly."""

import re

import nbformat
import pytest

from grader.assignments import load_assignment, read_secret, write_release
from grader.assignments.release import BEGIN, END, SolutionMarkerError, strip_solutions
from grader.execution import Budget
from grader.sandbox import BubblewrapSandbox, PlainSandbox, probe
from grader.scoring import grade_submission
from grader.suites import load_suite


def _without_solutions(source: str) -> str:
    """The source with every marked block (markers included) collapsed to one placeholder line."""
    return re.sub(rf"[ \t]*{BEGIN}\n.*?{END}", "<solution>", source, flags=re.S)


def _without_stubs(source: str) -> str:
    return re.sub(r'[ \t]*raise NotImplementedError\("[^"]*"\)', "<solution>", source)


def test_master_and_release_differ_only_inside_solution_markers(assignment, release):
    master = nbformat.read(assignment.folder / assignment.notebook, as_version=4)
    student = nbformat.read(release / assignment.notebook, as_version=4)
    assert len(master.cells) == len(student.cells)
    for ours, theirs in zip(master.cells, student.cells):
        assert ours.cell_type == theirs.cell_type and ours.metadata == theirs.metadata
        assert _without_solutions(ours.source) == _without_stubs(theirs.source)
    assert any(BEGIN in c.source for c in master.cells)


def test_no_solution_text_hidden_test_or_secret_leaves(assignment, release):
    master = nbformat.read(assignment.folder / assignment.notebook, as_version=4)
    released = "\n".join(p.read_text(errors="replace") for p in release.rglob("*") if p.suffix in (".ipynb", ".py", ".toml", ".md"))
    for cell in master.cells:
        for block in re.findall(rf"{BEGIN}\n(.*?){END}", cell.source, flags=re.S):
            for line in block.splitlines():
                if len(line.strip()) > 25:
                    assert line.strip() not in released, line
    assert not list(release.rglob("hidden_*"))
    secret = read_secret(assignment)  # writing the release drew it, if grading had not yet
    assert secret is not None
    for path in (p for p in release.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert secret.hex().encode() not in data and secret not in data, path
    assert not list(release.rglob("hidden")) and not list(release.rglob("heldout*"))
    assert "[heldout]" not in (release / "assignment.toml").read_text()
    assert "seed" not in (release / "assignment.toml").read_text()
    assert sorted(p.name for p in (release / "tests").iterdir()) == sorted(
        p.name for p in assignment.suite_dir.glob("test_*.py"))
    assert {p.name for p in (release / "data").iterdir()} == {"train", "val", "test"}


def test_stubs_name_what_to_write():
    source = "class UNet:\n    def forward(self, x):\n        # BEGIN SOLUTION\n        return x\n        # END SOLUTION\n"
    assert 'raise NotImplementedError("UNet.forward: write your code here")' in strip_solutions(source)
    with pytest.raises(SolutionMarkerError, match="never closed"):
        strip_solutions("# BEGIN SOLUTION\nx = 1\n", "cell 3")
    with pytest.raises(SolutionMarkerError, match="without"):
        strip_solutions("x = 1\n# END SOLUTION\n", "cell 3")


def test_writing_into_a_non_empty_folder_is_refused(assignment, release):
    from grader.assignments import AssignmentError
    with pytest.raises(AssignmentError, match="is not empty"):
        write_release(assignment, release)


def test_the_untouched_release_scores_zero_without_a_crash(assignment, release):
    sandbox = BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)
    suite = load_suite(assignment.suite_dir, assignment)
    result = grade_submission(release, suite, sandbox, Budget(load_seconds=300))
    assert result.score == 0 and result.max_score > 0
    assert len(result.tests) == len(suite)
    assert all("NotImplementedError" in t.output for t in result.tests)


@pytest.mark.slow
def test_the_master_notebook_with_the_reference_model_scores_full_marks(assignment, smoke_run, tmp_path):
    import shutil

    folder = tmp_path / "master"
    folder.mkdir()
    shutil.copy(assignment.folder / assignment.notebook, folder)
    shutil.copy(smoke_run / "model.pt", folder)
    sandbox = BubblewrapSandbox() if probe() is None else PlainSandbox(announce=False)
    result = grade_submission(folder, load_suite(assignment.suite_dir, assignment), sandbox, Budget(load_seconds=300))
    assert {t.number: t.output for t in result.tests if t.status != "passed"} == {}
    assert "skipped: tagged train; model.pt is present" in result.output


def test_the_release_workflow_installs_the_grader_and_runs_grader_ci(assignment, release):
    import yaml

    from grader.assignments.release import CI_COMMAND, REPORT_FOLDER, install_commands

    workflow = yaml.safe_load((release / ".github" / "workflows" / "grade.yml").read_text())
    steps = {step.get("name", step.get("uses")): step for step in workflow["jobs"]["grade"]["steps"]}
    assert steps["Install the grader"]["run"].split("\n")[:-1] == install_commands(assignment)
    assert steps["Grade with the public tests"]["run"] == CI_COMMAND  # the command test_ci.py runs
    assert steps["Upload the report"]["with"]["path"] == f"{REPORT_FOLDER}/"
    assert steps["Upload the report"]["with"]["name"] == REPORT_FOLDER  # the name the student README gives
    assert steps["Upload the report"]["if"] == "always()"
    assert workflow[True] is not None  # `on:` (YAML 1.1 reads the key as True): push and manual runs
    assert "unet-grader==" in install_commands(assignment)[1]


def test_the_student_readme_says_how_to_set_up_check_and_submit(assignment, release):
    from grader.assignments.release import CHECK_FOLDER, REPORT_FOLDER, install_commands

    text = (release / "README.md").read_text()
    for command in install_commands(assignment):
        assert command in text
    assert f"grader check {assignment.notebook}" in text and "git push" in text and "model.pt" in text
    for part in assignment.parts:
        assert f"| {part.title} | {part.points:g} |" in text
    for item in assignment.rubric:
        assert item.id in text
    assert str(assignment.heldout.reference_dice) not in text
    assert f"`{CHECK_FOLDER}/report.html`" in text and f"`{REPORT_FOLDER}` artifact" in text
    ignored = (release / ".gitignore").read_text().splitlines()
    assert f"{CHECK_FOLDER}/" in ignored and f"{REPORT_FOLDER}/" in ignored  # reports never committed


def test_the_release_keeps_the_classes_the_public_featured_tests_and_the_suite_settings(assignment, release):
    public = load_assignment(release)
    assert public.class_names == assignment.class_names and public.class_colors == assignment.class_colors
    assert public.report.overlay_test == assignment.report.overlay_test  # a public test
    assert public.report.heldout_test == ""  # hidden: not in the release's suite


def test_suite_settings_survive_the_public_toml(assignment, tmp_path):
    import dataclasses
    import tomllib

    from grader.assignments.release import _public_toml

    settings = {"tolerance": 0.02, "note": 'a "quoted" \\ text', "on": True, "sizes": [[1, 2], [3, 4]],
                "models": {"resnet18": {"reference_dice": 0.8}, "odd key": {"x": -1}}}
    toml = _public_toml(dataclasses.replace(assignment, suite_settings=settings), {"overlay.contract"})
    parsed = tomllib.loads(toml)
    assert parsed["suite_settings"] == settings and parsed["report"] == {"overlay_test": "overlay.contract"}
