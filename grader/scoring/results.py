"""Per-test results and Gradescope's results.json (CONTRACT.md), written atomically.

Beyond Gradescope's keys, results.json carries `schema_version`, `sandbox`, `problem` and, where
the grading drew test cases, `seed`: the integer they were drawn from, so a grading can be
reproduced (`grader.suites.instantiate(tests, seed)`) and a regrade checked to be identical."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import UserError
from grader.fileio import write_text_atomic
from grader.scoring.extras import Extras

SCHEMA_VERSION = 1
PROBLEMS = ("crashed", "timed out", "not graded")  # raised while loading; ran too long; could not be run


@dataclass(frozen=True)
class TestResult:
    """One test's verdict, ready for any exporter."""

    __test__ = False  # not a pytest test class

    number: str
    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str
    tags: tuple[str, ...]
    kept: dict = field(default_factory=dict, compare=False, repr=False)  # images and tables for the report
    bonus: bool = False  # of an optional part: its points count within the other tests' maximum


@dataclass(frozen=True)
class GradeResult:
    """A whole submission's grade."""

    tests: tuple[TestResult, ...]
    execution_time: float
    output: str
    sandbox: str
    problem: str = ""  # "", or why the submission did not run through: PROBLEMS
    extras: Extras = field(default_factory=Extras, compare=False)
    seed: int | None = None  # what the drawn test cases were drawn from
    timings: tuple[tuple[str, float], ...] = field(default=(), compare=False)  # seconds per stage, for benchmarks

    @property
    def score(self) -> float:
        """Every test's points, bonus ones included, never above `max_score`."""
        return round(min(sum(t.score for t in self.tests), self.max_score), 6)

    @property
    def max_score(self) -> float:
        """The points of the tests that are not bonus."""
        return round(sum(t.max_score for t in self.tests if not t.bonus), 6)


def to_gradescope(result: GradeResult) -> dict:
    """Gradescope's autograder format, with `schema_version` and the sandbox used."""
    tests = []
    for t in result.tests:
        tests.append({"number": t.number, "name": t.name, "score": t.score, "max_score": t.max_score,
                      "status": t.status, "output": t.output, "visibility": t.visibility, "tags": list(t.tags),
                      **({"bonus": True} if t.bonus else {})})
    data = {"schema_version": SCHEMA_VERSION, "score": result.score, "max_score": result.max_score,
            "execution_time": round(result.execution_time, 3), "output": result.output,
            "sandbox": result.sandbox, "problem": result.problem}
    if result.seed is not None:
        data["seed"] = result.seed
    return {**data, "tests": tests}


class ResultsVersionError(UserError, ValueError):
    """A stored results.json of a schema version this grader does not read."""


def from_gradescope(data: dict, extras: Extras = Extras(), kept: dict[str, dict] | None = None) -> GradeResult:
    """The inverse of `to_gradescope`, with the extras and kept values stored beside it."""
    if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ResultsVersionError(f"a stored results.json has schema version {data.get('schema_version')!r}; this "
                                  f"grader reads version {SCHEMA_VERSION}. Use the grader that wrote it, or grade "
                                  "again with --regrade")
    kept = kept or {}
    tests = tuple(TestResult(t["number"], t["name"], t["score"], t["max_score"], t["status"], t["output"],
                             t["visibility"], tuple(t["tags"]), kept.get(t["number"], {}), t.get("bonus") is True)
                  for t in data["tests"])
    seed = data.get("seed")
    return GradeResult(tests, data["execution_time"], data["output"], data.get("sandbox", ""),
                       data.get("problem", ""), extras, seed if isinstance(seed, int) else None)


RESULTS_JSON = "results.json"


def write_results(path: Path, result: GradeResult) -> Path:
    return write_text_atomic(path, json.dumps(to_gradescope(result), indent=2) + "\n")
