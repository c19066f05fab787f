"""The report templates are found without a link into the package, and the wheel lists every
package (listed, not discovered, because the templates are mapped in from reports/templates)."""

import tomllib
from pathlib import Path

from grader.reports.render import ENV, TEMPLATE_FOLDERS

ROOT = Path(__file__).resolve().parents[3]


def test_the_checkout_reads_the_templates_in_reports_templates():
    assert not (ROOT / "grader" / "reports" / "templates").exists()
    assert TEMPLATE_FOLDERS[0] == ROOT / "reports" / "templates"
    assert ENV.get_template("report.html.j2") and ENV.get_template("summary.md.j2")


def test_pyproject_lists_every_package_of_the_grader():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "grader").rglob("__init__.py")}
    assert set(setuptools["packages"]) == found | {"grader.reports.templates"}
    assert setuptools["package-dir"]["grader.reports.templates"] == "reports/templates"


def test_pyproject_ships_every_template_folder_of_the_package():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for template in (ROOT / "grader").rglob("*.j2"):
        package = template.parent
        while not (package / "__init__.py").is_file():
            package = package.parent
        name = ".".join(package.relative_to(ROOT).parts)
        relative = template.relative_to(package).as_posix()
        assert any(Path(relative).match(glob) for glob in data.get(name, [])), f"{relative} of {name} is not shipped"
