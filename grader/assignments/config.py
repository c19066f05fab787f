"""`assignment.toml`: every key declared once, with its type, default and meaning; validated on
load, with errors that name the key and the file."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

from grader import __version__
from grader.errors import UserError

# Okabe & Ito (2008): distinguishable with the common colour-vision deficiencies. Label k gets
# colour k unless `[classes] colors` says otherwise; the first is a light grey for background.
PALETTE = ("#dddddd", "#e69f00", "#0072b2", "#009e73", "#f0e442", "#56b4e9", "#d55e00", "#cc79a7", "#000000")
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class AssignmentError(UserError, ValueError):
    """An assignment folder or `assignment.toml` that cannot be used; the message names the key."""


def _key(default, help_text: str):
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TimeLimits:
    load_seconds: float = _key(900.0, "running the whole notebook or module in the sandbox")
    cell_seconds: float = _key(600.0, "one notebook cell")
    call_seconds: float = _key(180.0, "the most any one test call may take")
    submission_seconds: float = _key(3600.0, "the ceiling on one submission's whole grading in the sandbox, "
                                             "restarts included; calls left when it is reached fail with the reason")
    restarts: int = _key(3, "fresh sandboxes one grading may start after a crash or a hang; then the calls "
                            "left fail with the reason")


@dataclass(frozen=True)
class Heldout:
    """The hidden held-out set: images go into the sandbox, masks never leave the grader. Synthetic
    images are drawn from the assignment's secret (`hidden/secret`), or read from `folder`."""

    folder: str = _key("", "a folder of real held-out data (images/NAME.png, masks/NAME.png), relative to this "
                           "file; empty: synthetic images drawn from the assignment's secret")
    count: int = _key(6, "synthetic held-out images")
    sizes: tuple[tuple[int, int], ...] = _key(((256, 256), (224, 320), (250, 270)),
                                              "(height, width) cycled over the synthetic images; some not "
                                              "multiples of 32")
    classes: int = _key(3, "classes in the masks: labels 0 to classes - 1; default: as many as [classes] names, "
                           "else 3")
    reference_dice: float = _key(0.85, "the reference solution's mean foreground Dice on this set")
    reference_class_dice: tuple[float, ...] = _key((), "the reference's Dice per class, in the order of [classes] "
                                                       "names, shown beside the student's in reports")
    reference_class_iou: tuple[float, ...] = _key((), "the reference's IoU per class, likewise")
    full_fraction: float = _key(0.95, "full marks at or above this fraction of the reference's Dice")
    floor_fraction: float = _key(0.5, "no marks below this fraction; linear in between")

    def credit(self, dice: float) -> float:
        """Fraction of the points for a mean foreground Dice, on the curve."""
        ratio = dice / self.reference_dice
        if ratio >= self.full_fraction:
            return 1.0
        return max(0.0, (ratio - self.floor_fraction) / (self.full_fraction - self.floor_fraction))


@dataclass(frozen=True)
class Part:
    tag: str = _key("", "the tag of the tests in this part")
    title: str = _key("", "what the part is called in reports")
    points: float = _key(0.0, "the part's points; the suite's tests of this tag must add up to it")
    visibility: str = _key("visible", "visible: public tests, shipped in the release; hidden: graded only by "
                                      "the instructor, results shown after the due date")
    bonus: bool = _key(False, "an optional part: its points make up points lost elsewhere, the total staying within "
                              "the maximum of the other parts")


@dataclass(frozen=True)
class Classes:
    """What the labels are called and how reports colour them (legend, per-class table, label maps)."""

    names: tuple[str, ...] = _key((), "label k is names[k]; a held-out test keeps its per-class scores under "
                                      "these names; default: class 0, class 1, ...")
    colors: tuple[str, ...] = _key((), "a \"#rrggbb\" colour per name; default: the Okabe-Ito palette in order, "
                                       "light grey first")


@dataclass(frozen=True)
class SubmissionFiles:
    """The files beside a submission's notebook or module that the grader reads as data."""

    models: tuple[str, ...] = _key(("model.pt",), "trained weights handed in; when all are present, notebook cells "
                                                  "tagged `train` are skipped")
    answer_tag: str = _key("", "notebook cells with this tag hold the written answer shown to hand-graders")
    answer_file: str = _key("", "the written answer of a module or folder submission (such as analysis.md)")
    history_file: str = _key("history.csv", "training curves (a CSV with a header row) drawn in the report")


@dataclass(frozen=True)
class Report:
    """The tests whose kept values reports feature in sections of their own; "" for none."""

    heldout_test: str = _key("", "test id whose kept \"dice\" and \"iou\" (per class name) and \"predictions\" "
                                 "(label maps of the held-out images) make the held-out section")
    overlay_test: str = _key("", "test id whose kept \"overlay\" image (uint8, height x width x 3) is shown")


@dataclass(frozen=True)
class RubricItem:
    """One criterion of the hand-graded failure analysis."""

    id: str = _key("", "stable id, a column of the manual-grading CSV")
    points: float = _key(0.0, "points for this criterion")
    description: str = _key("", "what earns them, shown to graders and, after grading, to students")


@dataclass(frozen=True)
class Assignment:
    folder: Path
    name: str = _key("", "short name: the folder's name by convention; the suite is test_suites/NAME unless "
                         "`suite` says otherwise")
    title: str = _key("", "title shown to students")
    version: str = _key("1", "bumped whenever tests or points change; recorded with every grade")
    notebook: str = _key("", "the master notebook, with solutions between markers")
    suite: str = _key("", "test suite folder, relative to this file; default: test_suites/NAME beside the "
                          "assignments/ folder that holds this one")
    gpu: bool = _key(False, "pass NVIDIA devices into the sandbox when the host has them")
    grader_requirement: str = _key(f"unet-grader=={__version__}", "what the release's workflow and README pip-install "
                                   "the grader with: a version, a wheel URL, or git+https://...")
    results_release: str = _key("", "ISO date or date-time (2026-12-18, 2026-12-18T17:00+01:00) from which reports "
                                    "show hidden tests' messages and held-out samples; empty: never")
    time: TimeLimits = _key(TimeLimits(), "time limits")
    heldout: Heldout = _key(Heldout(), "the hidden held-out set and the grading curve")
    classes: Classes = _key(Classes(), "label names and colours for reports")
    report: Report = _key(Report(), "the tests reports feature")
    submission: SubmissionFiles = _key(SubmissionFiles(), "the files beside the notebook the grader reads")
    parts: tuple[Part, ...] = _key((), "the parts, in the order reports list them; a test's tag must be one "
                                       "of their tags")
    rubric: tuple[RubricItem, ...] = _key((), "criteria of the failure analysis, graded by hand")
    suite_settings: dict = field(default_factory=dict, compare=False, hash=False, metadata={
        "help": "a free-form table handed to the suite untouched (`assignment.suite_settings`), which "
                "validates it; copied into the student release, so nothing secret"})

    @property
    def class_names(self) -> tuple[str, ...]:
        """The labels' names: [classes] names, else class 0 .. class N-1 for the held-out classes."""
        return self.classes.names or tuple(f"class {k}" for k in range(self.heldout.classes))

    @property
    def class_colors(self) -> tuple[str, ...]:
        """A "#rrggbb" colour per label: [classes] colors, else the palette in order."""
        count = len(self.class_names)
        return self.classes.colors or tuple(PALETTE[k % len(PALETTE)] for k in range(count))

    @property
    def bonus_tags(self) -> frozenset[str]:
        """Tags of the optional parts, whose points count within the other parts' maximum."""
        return frozenset(p.tag for p in self.parts if p.bonus)

    @property
    def suite_dir(self) -> Path:
        """`suite` relative to this file; by convention, assignments/NAME's suite is test_suites/NAME."""
        if self.suite:
            return (self.folder / self.suite).resolve()
        return (self.folder.parent.parent / "test_suites" / self.folder.name).resolve()

    def hidden_results_released(self, now: datetime | None = None) -> bool:
        """Whether reports may show hidden tests' outputs (only their names and points before)."""
        if not self.results_release:
            return False
        return (now or datetime.now(timezone.utc)) >= _release_time(self.results_release)

    @property
    def hidden_dir(self) -> Path:
        """Where hidden data is kept on the instructor's side (git-ignored, never released)."""
        return self.folder / "hidden"


def _values(cls, raw: dict, where: str, path: Path) -> dict:
    known = {f.name: f for f in fields(cls) if not (cls is Assignment and f.name == "folder")}
    if cls is Heldout and "seed" in raw:
        raise AssignmentError(f"{path}: heldout.seed is not a setting: anyone could regenerate the held-out "
                              "masks from a seed in this file. Delete the line; the held-out set is drawn from a secret that "
                              "grader assign (or the first grading) writes to hidden/secret, or set heldout.folder "
                              "to a folder of real images and masks")
    unknown = set(raw) - set(known)
    if unknown:
        kind = "section" if isinstance(raw[sorted(unknown)[0]], (dict, list)) and not where else "key"
        raise AssignmentError(f"{path}: unknown {kind} {where}{sorted(unknown)[0]}; valid keys"
                              f"{' in [' + where.rstrip('.') + ']' if where else ''}: {', '.join(known)}")
    values = {}
    for name, value in raw.items():
        default = known[name].default
        if isinstance(default, (TimeLimits, Heldout, Classes, Report, SubmissionFiles)):
            if not isinstance(value, dict):
                raise AssignmentError(f"{path}: {where}{name} must be a table ([{where}{name}]), not {value!r}")
            value = type(default)(**_values(type(default), value, f"{where}{name}.", path))
        elif name == "suite_settings":
            if not isinstance(value, dict):
                raise AssignmentError(f"{path}: suite_settings must be a table ([suite_settings]), not {value!r}")
        elif name in ("parts", "rubric"):
            kind = Part if name == "parts" else RubricItem
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise AssignmentError(f"{path}: {name} must be a list of tables, each starting [[{name}]]")
            value = tuple(kind(**_values(kind, v, f"{name}.", path)) for v in value)
        elif name == "sizes":
            value = tuple(tuple(int(x) for x in pair) for pair in value)
        elif name in ("reference_class_dice", "reference_class_iou"):
            value = tuple(float(x) for x in value)
        elif name in ("names", "colors", "models"):
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise AssignmentError(f"{path}: {where}{name} must be a list of strings, not {value!r}")
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise AssignmentError(f"{path}: {where}{name} must be true or false, not {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise AssignmentError(f"{path}: {where}{name} must be a number, not {value!r}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise AssignmentError(f"{path}: {where}{name} must be a string, not {value!r}")
        values[name] = value
    return values


def _release_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def fingerprint(assignment: Assignment) -> str:
    """A hash of `assignment.toml`, the suite's files and the secret's digest: a grade is current
    while they are unchanged (a new secret means a new held-out set and new drawn cases)."""
    from grader.assignments.secret import secret_digest

    digest = hashlib.sha256()
    for path in [assignment.folder / "assignment.toml", *sorted(assignment.suite_dir.glob("*.py"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(b"secret\0" + secret_digest(assignment).encode())
    return digest.hexdigest()[:16]


def check_suite(assignment: Assignment, tests: list, complete: bool = True) -> None:
    """The suite agrees with the declared parts: points add up, visibility matches (`load_suite`
    has checked that every tag is a part's). A `complete` suite (hidden tests loaded too) must
    also hold every test that [report] names."""
    parts = {p.tag: p for p in assignment.parts}
    where = assignment.folder / "assignment.toml"
    ids = [t.id for t in tests]
    for key in ("heldout_test", "overlay_test"):
        wanted = getattr(assignment.report, key)
        if complete and wanted and wanted not in ids:
            raise AssignmentError(f"{where}: report.{key} {wanted!r} is not a test of the suite "
                                  f"{assignment.suite_dir}; valid choices: {', '.join(ids) or 'none'}")
    for test in tests:
        part = parts.get(test.tag)
        if part and (part.visibility == "hidden") != (test.visibility != "visible"):
            raise AssignmentError(f"{where}: test {test.id} is {test.visibility} but its part {test.tag!r} is "
                                  f"{part.visibility}")
    for part in assignment.parts:
        total = sum(t.points for t in tests if t.tag == part.tag)
        shipped_without_hidden = part.visibility == "hidden" and not total  # a student release
        if part.points and not shipped_without_hidden and abs(total - part.points) > 1e-9:
            raise AssignmentError(f"{where}: part {part.tag!r} declares {part.points:g} points but its tests "
                                  f"add up to {total:g}")


def _check_heldout(spec: Heldout, folder: Path, path: Path) -> None:
    if spec.folder and not (folder / spec.folder).is_dir():
        raise AssignmentError(f"{path}: heldout.folder {spec.folder!r} is not a folder (it is read relative to "
                              f"{folder}; the layout is images/NAME.png and masks/NAME.png)")
    if spec.count < 1 or not spec.sizes or any(len(s) != 2 or min(s) < 1 for s in spec.sizes):
        raise AssignmentError(f"{path}: heldout.count must be at least 1 and heldout.sizes a list of "
                              "[height, width] pairs")
    if spec.classes < 2:
        raise AssignmentError(f"{path}: heldout.classes must be at least 2, not {spec.classes}")


def _check_classes(assignment: Assignment, path: Path) -> None:
    names, colors = assignment.classes.names, assignment.classes.colors
    if names and len(names) != assignment.heldout.classes:
        raise AssignmentError(f"{path}: classes.names has {len(names)} names but heldout.classes is "
                              f"{assignment.heldout.classes}; give one name per class (or leave heldout.classes out)")
    if len(set(names)) != len(names):
        raise AssignmentError(f"{path}: classes.names has a name twice: {', '.join(names)}")
    if colors and len(colors) != len(assignment.class_names):
        raise AssignmentError(f"{path}: classes.colors has {len(colors)} colours for {len(assignment.class_names)} "
                              "classes; give one per class")
    bad = next((c for c in colors if not HEX_COLOR.fullmatch(c)), None)
    if bad is not None:
        raise AssignmentError(f"{path}: classes.colors: {bad!r} is not a colour such as \"#e69f00\" (# and six "
                              "hex digits)")


def load_assignment(folder: Path) -> Assignment:
    """Read and validate `folder/assignment.toml`."""
    folder = Path(folder)
    path = folder / "assignment.toml"
    if not path.is_file():
        raise AssignmentError(f"{folder}: no assignment.toml here; pass --assignment with an assignment folder")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise AssignmentError(f"{path}: not valid TOML ({err})") from err
    values = _values(Assignment, raw, "", path)
    names = values.get("classes", Classes()).names
    if names and "classes" not in raw.get("heldout", {}):  # heldout.classes follows the names unless given
        values["heldout"] = replace(values.get("heldout", Heldout()), classes=len(names))
    assignment = Assignment(folder=folder.resolve(), **values)
    if not assignment.name:
        raise AssignmentError(f"{path}: name is required")
    try:
        _release_time(assignment.results_release) if assignment.results_release else None
    except ValueError as err:
        raise AssignmentError(f"{path}: results_release must be an ISO date such as 2026-12-18 or "
                              f"2026-12-18T17:00+01:00, not {assignment.results_release!r}") from err
    _check_heldout(assignment.heldout, folder, path)
    _check_classes(assignment, path)
    if not assignment.suite_dir.is_dir():
        how = "" if assignment.suite else (" (by convention the suite of assignments/NAME is test_suites/NAME; "
                                           "set suite = \"path\" relative to this file otherwise)")
        raise AssignmentError(f"{path}: the suite folder {assignment.suite_dir} does not exist{how}")
    return assignment
