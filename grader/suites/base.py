"""The shape of a test, loading a suite folder of them, and drawing the cases of tests whose
inputs are drawn afresh at each grading."""

from __future__ import annotations

import importlib.util
import sys
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from grader.errors import UserError
from grader.execution.calls import Call, CallOutcome

if TYPE_CHECKING:
    from grader.assignments import Assignment

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


class Failure(Exception):
    """A test's verdict that the submission is wrong; the message is shown to the student."""


class SuiteError(UserError, ValueError):
    """A suite that is malformed (the instructor's to fix): duplicate ids, unknown tags, ..."""


@dataclass(frozen=True)
class Partial:
    """A check's verdict of partial credit: `fraction` of the points, and why not all."""

    fraction: float
    message: str


class Answers:
    """The outcomes of one test's calls, with helpers that turn a failed call into a `Failure`."""

    def __init__(self, outcomes: dict[str, CallOutcome], load_problem: str = ""):
        self.outcomes = outcomes
        self.load_problem = load_problem  # the first error while the submission loaded, if any
        self.kept: dict[str, Any] = {}  # images and tables a test keeps for the report

    def keep(self, name: str, value: Any) -> None:
        """Keep `value` (an image array, a table) with this test's result for the report."""
        self.kept[name] = value

    def outcome(self, call_id: str) -> CallOutcome:
        return self.outcomes[call_id]

    def value(self, call_id: str, what: str = "") -> Any:
        """The call's value, or a `Failure` saying what went wrong when it was made."""
        outcome = self.outcomes[call_id]
        if not outcome.ok:
            label = what or f"the call {call_id}"
            missing = outcome.error is not None and outcome.error.type == "NameError"
            note = f" (note: {self.load_problem}, so later definitions may be missing)" if (
                missing and self.load_problem) else ""
            raise Failure(f"{label} {outcome.describe()}{note}")
        return outcome.value


@dataclass(frozen=True)
class Test:
    """One graded test: points, a tag, a stable dotted id, the calls it needs, and its check."""

    __test__ = False  # not a pytest test class

    id: str
    name: str
    points: float
    tag: str
    calls: tuple[Call, ...]
    check: Callable[[Answers], "Partial | None"]
    visibility: str = "visible"
    hint: str = ""
    draw: Callable[[np.random.Generator], Drawn] | None = None  # cases drawn at grading time

    def __post_init__(self) -> None:
        if self.visibility not in VISIBILITIES:
            raise SuiteError(f"test {self.id}: visibility {self.visibility!r} is not one of {', '.join(VISIBILITIES)}")


def register(registry: list[Test], *, id: str, name: str, points: float, tag: str, calls: list[Call],
             visibility: str = "visible", hint: str = "") -> Callable[[Callable[[Answers], None]], Callable]:
    """Decorator: add the decorated check to `registry` as a `Test`."""
    def add(check: Callable[[Answers], None]) -> Callable[[Answers], None]:
        registry.append(Test(id, name, points, tag, tuple(calls), check, visibility, hint))
        return check
    return add


@dataclass(frozen=True)
class Drawn:
    """What a drawn test's `draw(rng)` returns: the calls made from its cases, and the check of
    their answers (which knows the cases, so it can compute the expected values)."""

    calls: tuple[Call, ...]
    check: Callable[[Answers], "Partial | None"]


PREVIEW_SEED = 0  # the cases a drawn test shows before `instantiate`; never the ones graded


def register_drawn(registry: list[Test], *, id: str, name: str, points: float, tag: str, visibility: str = "visible",
                   hint: str = "") -> Callable[[Callable[[np.random.Generator], Drawn]], Callable]:
    """Decorator: add a test whose cases the decorated `draw(rng) -> Drawn` makes afresh for each
    grading (`instantiate`). Until then it holds preview cases, so its calls can be listed."""
    def add(draw: Callable[[np.random.Generator], Drawn]) -> Callable[[np.random.Generator], Drawn]:
        preview = draw(case_rng(PREVIEW_SEED, id))
        registry.append(Test(id, name, points, tag, tuple(preview.calls), preview.check, visibility, hint, draw))
        return draw
    return add


def case_rng(seed: int, test_id: str) -> np.random.Generator:
    """The generator a test draws its cases from: one stream per test, so a grading of some tests
    (`--tag`, a selective regrade) draws the same cases for them as a grading of all."""
    return np.random.default_rng([int(seed), zlib.crc32(test_id.encode())])


def instantiate(tests: list[Test], seed: int) -> list[Test]:
    """The tests with every drawn test's cases drawn from `seed`; other tests unchanged."""
    out = []
    for test in tests:
        if test.draw is None:
            out.append(test)
            continue
        drawn = test.draw(case_rng(seed, test.id))
        out.append(replace(test, calls=tuple(drawn.calls), check=drawn.check))
    _check_call_ids(out, "the drawn cases")
    return out


def _check_call_ids(tests: list[Test], where: object) -> None:
    call_ids: dict[str, Call] = {}
    for test in tests:
        for c in test.calls:
            if call_ids.setdefault(c.id, c) is not c:
                raise SuiteError(f"{where}: call id {c.id} is defined twice; share the Call object instead")


def _module_name(path: Path) -> str:
    return f"_grader_suite_{path.parent.name}_{path.stem}"


def _load_module(path: Path):
    """Execute the suite file `path` afresh, registered under its suite module name."""
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sibling_module(suite_file: str | Path, stem: str):
    """The suite file `stem`.py beside `suite_file` as `load_suite` loaded it (files load in name
    order, hidden ones last), loaded now if it was not: suite files share its calls and verifier jobs."""
    path = Path(suite_file).with_name(f"{stem}.py")
    return sys.modules.get(_module_name(path)) or _load_module(path)


def load_suite(folder: Path, assignment: Assignment | None = None, hidden: bool = True) -> list[Test]:
    """The tests of the `test_*.py` files in `folder` (and, with `hidden`, of `hidden_*.py`), in
    file order: each file's `TESTS` list, or what its `build_tests(assignment)` returns (for tests
    that need the assignment, such as the held-out set). Ids must be unique and, given the
    assignment, every tag one of its `[[parts]]` tags."""
    tests: list[Test] = []
    paths = sorted(Path(folder).glob("test_*.py")) + (sorted(Path(folder).glob("hidden_*.py")) if hidden else [])
    for path in paths:
        module = _load_module(path)
        builder = getattr(module, "build_tests", None)
        found = list(builder(assignment) if builder is not None else getattr(module, "TESTS", []))
        if assignment is not None:
            _check_tags(found, assignment, path)
        tests.extend(found)
    seen: set[str] = set()
    for test in tests:
        if test.id in seen:
            raise SuiteError(f"{folder}: test id {test.id} is used twice")
        seen.add(test.id)
    _check_call_ids(tests, folder)
    return tests


def _check_tags(tests: list[Test], assignment: Assignment, path: Path) -> None:
    """Every test's tag is one of the assignment's `[[parts]]` tags."""
    tags = [part.tag for part in assignment.parts]
    for test in tests:
        if test.tag not in tags:
            valid = f"valid tags: {', '.join(tags)}" if tags else "it declares no [[parts]]"
            raise SuiteError(f"{path}: test {test.id} has tag {test.tag!r}, which is not a [[parts]] tag of "
                             f"{assignment.folder / 'assignment.toml'} ({valid}); fix the tag or add a part")
