import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import replace

from grader.assignments import load_assignment
from grader.gradebook import ManualScore, canvas_csv, gradebook_csv, junit_xml, write_exports
from tests.grader.gradebook.test_store import run


def rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_gradebook_csv_has_totals_tests_and_rubric(mini_assignment):
    assignment = load_assignment(mini_assignment)
    manual = {"ada": {"explanation": ManualScore("ada", "explanation", 1.5)}}
    table = rows(gradebook_csv([run("ada", 2), run("alan", 0)], manual, assignment))
    header, ada, alan = table
    assert header[:10] == ["student", "name", "lms_id", "total", "max_total", "autograded", "max_autograded",
                           "manual", "max_manual", "problem"]
    assert ada[header.index("total")] == "4.5" and ada[header.index("rubric.explanation")] == "1.5"
    assert alan[header.index("arithmetic.add")] == "0" and alan[header.index("rubric.explanation")] == ""


def test_canvas_csv_follows_the_gradebook_import_layout(mini_assignment):
    assignment = load_assignment(mini_assignment)
    table = rows(canvas_csv([run("ada", 2)], {}, assignment))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Mini assignment"]
    assert table[1][0] == "Points Possible" and table[1][-1] == "7"
    assert table[2] == ["Ada", "42", "", "", "", "3"]


def test_junit_xml_has_a_suite_per_student_and_failures_with_messages():
    root = ET.fromstring(junit_xml([run("ada", 2), run("alan", 0)]))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["ada"].get("failures") == "0" and suites["alan"].get("failures") == "1"
    failure = suites["alan"].find("testcase[@name='arithmetic.add']/failure")
    assert failure is not None and failure.text == "msg" and "0/2 points" in failure.get("message")


def test_write_exports_writes_every_file_and_results_per_student(mini_assignment, tmp_path):
    paths = write_exports(tmp_path, [run("ada", 2)], {}, load_assignment(mini_assignment))
    names = {p.relative_to(tmp_path).as_posix() for p in paths}
    assert names == {"gradebook.csv", "canvas.csv", "junit.xml", "ada/results.json"}


def test_junit_xml_parses_whatever_characters_a_message_holds():
    # The red team's junit_control_chars: a NUL, SOH and ESC in an exception message made the class's file
    # unparseable. A lone surrogate and U+FFFF are not XML either.
    hostile = run("mallory", 0)
    test = replace(hostile.result.tests[0], output="bad\x00\x01\x1b[31m value\ud800\uffff \u00e9\U0001f600\tend",
                   name="add\x0b")
    hostile = replace(hostile, result=replace(hostile.result, tests=(test, *hostile.result.tests[1:])),
                      graded_at="2026-01-01\x0c")
    text = junit_xml([run("ada", 2), hostile])
    root = ET.fromstring(text.encode("utf-8"))
    failure = root.find("testsuite[@name='mallory']/testcase[@name='arithmetic.add']/failure")
    assert failure.text == "bad[31m value \u00e9\U0001f600\tend" and failure.get("message") == "0/2 points: add"
    assert root.find("testsuite[@name='mallory']").get("timestamp") == "2026-01-01"


def test_text_a_spreadsheet_would_run_as_a_formula_is_made_inert():
    from grader.gradebook.exports import csv_text

    text = csv_text([["student", "total"], ['=HYPERLINK("https://attacker.example","x")', 3.5], ["@SUM(A1)", -1.0],
                      ["ada", 2]])
    assert "'=HYPERLINK" in text and "'@SUM" in text and ",-1.0" in text and "\nada,2" in text
    # a `;` separates cells in some locales' spreadsheets: such a cell is quoted, so its second half stays text
    semicolon = csv_text([["A;=CHAR(72)&CHAR(73)", 1], ['say "hi", then', None]])
    assert semicolon == '"A;=CHAR(72)&CHAR(73)",1\n"say ""hi"", then",\n'
    import csv
    import io
    assert list(csv.reader(io.StringIO(semicolon))) == [["A;=CHAR(72)&CHAR(73)", "1"], ['say "hi", then', ""]]
