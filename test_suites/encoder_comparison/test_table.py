"""The results table (`results.csv`) against the grader's own measurements.

The table is the student's claim and is parsed here as hostile text: a size cap, exact columns,
one row per encoder, numbers in plain notation. Each Dice it reports is compared with the Dice the
grader measures for that model on the public test split: the model's graph (with its
`model_ENCODER.pt` loaded) is run by the verifier on the split's images and scored here against the
masks. Each parameter count is compared with the number of convolution weights in the graph."""

import csv
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.execution import read_text_call
from grader.fileio import publish_folder
from grader.scoring.segmentation import per_class
from grader.suites import Failure, register, sibling_module
from grader.verifier import LabelSet, VerificationFailed

TABLE_FILE = "results.csv"
MAX_TABLE_BYTES = 4096  # a header and three rows take about 250
MAX_ROWS = 8
MAX_CELL = 40
COLUMNS = ("encoder", "dice_background", "dice_cytoplasm", "dice_nucleus", "parameters")
CLASSES = ("background", "cytoplasm", "nucleus")
DECIMAL = re.compile(r"^[0-9]{0,3}(\.[0-9]{1,12})?$")
DIGITS = re.compile(r"^[0-9]{1,12}$")
PUBLIC_SEED, PUBLIC_TEST_INDEX, PUBLIC_TEST_COUNT, PUBLIC_SIZE = 0, 2, 16, 256  # `python -m reference data`
DEFAULT_DICE_TOLERANCE = 0.01
DEFAULT_PARAMETER_TOLERANCE = 0.005


def _encoders():
    """test_encoders.py as `load_suite` loaded it (files load in name order), so the networks, their
    calls and their verifier jobs are shared: each model is built, exported and verified once."""
    return sibling_module(__file__, "test_encoders")


class TableError(ValueError):
    """results.csv cannot be read as the table the assignment asks for; the message says what to fix."""


@dataclass(frozen=True)
class Row:
    encoder: str
    dice: tuple[float, float, float]  # background, cytoplasm, nucleus
    parameters: int


def _show(cell: str) -> str:
    """A cell of the student's file, quoted and cut short, for a message."""
    return repr(cell[:MAX_CELL] + ("..." if len(cell) > MAX_CELL else ""))


def _dice(cell: str, encoder: str, column: str) -> float:
    if not DECIMAL.match(cell) or cell in ("", "."):
        raise TableError(f"{column} of {encoder} is {_show(cell)}; write a plain decimal number such as 0.874")
    value = float(cell)
    if value > 1:
        raise TableError(f"{column} of {encoder} is {cell}: Dice is a fraction between 0 and 1, not a percentage")
    return value


def parse_table(text: str, encoders: tuple[str, ...]) -> dict[str, Row]:
    """The rows of results.csv by encoder; `TableError` saying what is wrong otherwise."""
    if "\0" in text:
        raise TableError("the file holds NUL bytes; save it as plain text (UTF-8)")
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise TableError("the file is empty")
    if len(lines) > MAX_ROWS + 1:
        raise TableError(f"the file has {len(lines)} lines; expected a header and one row per encoder")
    rows = list(csv.reader(io.StringIO("\n".join(lines)), strict=True))
    header = [cell.strip().lower() for cell in rows[0]]
    if sorted(header) != sorted(COLUMNS):
        raise TableError(f"the header is {', '.join(_show(c) for c in rows[0][:8])}; expected the columns "
                         f"{', '.join(COLUMNS)}")
    table = {}
    for number, cells in enumerate(rows[1:], start=2):
        if len(cells) != len(COLUMNS):
            raise TableError(f"line {number} has {len(cells)} cells; expected {len(COLUMNS)} ({', '.join(COLUMNS)})")
        row = dict(zip(header, (cell.strip() for cell in cells)))
        encoder = row["encoder"].lower()
        if encoder not in encoders:
            raise TableError(f"line {number} is about {_show(row['encoder'])}; the encoders are "
                             f"{', '.join(encoders)}")
        if encoder in table:
            raise TableError(f"{encoder} has more than one row")
        if not DIGITS.match(row["parameters"]):
            raise TableError(f"parameters of {encoder} is {_show(row['parameters'])}; write the count as digits "
                             "only, such as 24436659")
        dice = tuple(_dice(row[f"dice_{c}"], encoder, f"dice_{c}") for c in CLASSES)
        table[encoder] = Row(encoder, dice, int(row["parameters"]))
    missing = [e for e in encoders if e not in table]
    if missing:
        raise TableError(f"there is no row for {', '.join(missing)}")
    return table


def read_table(answers, call_id, encoders):
    """The parsed table, or a `Failure` that says what to fix."""
    value = answers.value(call_id, f"reading {TABLE_FILE}")
    if isinstance(value, dict) and value.get("absent") is True:
        raise Failure(f"no {TABLE_FILE} was found beside your notebook: write your measured test-split Dice per "
                      f"class and parameter count for each model there, with the columns {', '.join(COLUMNS)}. (grader "
                      "check sees the files beside the notebook when given the folder: grader check .)")
    if isinstance(value, dict) and value.get("link") is True:
        raise Failure(f"{TABLE_FILE} is a link to another file; the grader reads only files handed in: save the "
                      "table itself beside your notebook")
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise Failure(f"{TABLE_FILE} could not be read")
    if value.get("truncated") is not False or len(value["text"]) > MAX_TABLE_BYTES:
        raise Failure(f"{TABLE_FILE} is over {MAX_TABLE_BYTES} bytes; it should hold a header and one row per "
                      "encoder")
    try:
        return parse_table(value["text"], encoders)
    except (TableError, csv.Error) as err:
        raise Failure(f"{TABLE_FILE}: {err}")


def settings(assignment):
    """The tolerances from [suite_settings], checked (the instructor's mistakes are errors, not zeros)."""
    from grader.assignments import AssignmentError

    raw = getattr(assignment, "suite_settings", None) or {}
    out = {}
    for key, default in (("table_dice_tolerance", DEFAULT_DICE_TOLERANCE),
                         ("table_parameter_tolerance", DEFAULT_PARAMETER_TOLERANCE)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise AssignmentError(f"{assignment.folder / 'assignment.toml'}: suite_settings.{key} must be a number "
                                  f"between 0 and 1, not {value!r}")
        out[key] = float(value)
    return out


_public: dict[str, tuple] = {}


def public_test_split(assignment):
    """(images, masks) of the public test split: the release's data/test when the assignment folder
    has one (a student's `grader check`), else drawn by the checkout's reference package exactly as
    `python -m reference data` writes it, once, into the git-ignored hidden/suite-data/public-test."""
    key = str(assignment.folder)
    if key not in _public:
        folder = Path(assignment.folder) / "data" / "test"
        if not (folder / "masks").is_dir():
            folder = Path(assignment.folder) / "hidden" / "suite-data" / "public-test"
            if not (folder / "masks").is_dir():
                _write_split(folder, *_draw_split(assignment))
        _public[key] = _read_split(folder)
    return _public[key]


def _write_split(folder, images, masks):
    """PNGs, published whole (see publish_folder), so concurrent graders never read half of one."""
    from PIL import Image

    def fill(staging):
        for sub in ("images", "masks"):
            (staging / sub).mkdir()
        for i, (image, mask) in enumerate(zip(images, masks)):
            name = f"test_{i:04d}.png"
            Image.fromarray(np.moveaxis(np.round(image * 255), 0, -1).astype(np.uint8)).save(staging / "images" / name)
            Image.fromarray(mask.astype(np.uint8)).save(staging / "masks" / name)

    publish_folder(folder, fill, ".public-test-")


def _read_split(folder):
    from PIL import Image

    names = sorted(p.name for p in (folder / "masks").glob("*.png"))
    images = tuple(np.moveaxis(np.asarray(Image.open(folder / "images" / n).convert("RGB")), -1, 0)
                   .astype(np.float32) / 255 for n in names)
    masks = tuple(np.asarray(Image.open(folder / "masks" / n)).astype(np.int64) for n in names)
    return images, masks


def _draw_split(assignment):
    from grader.assignments import AssignmentError
    from grader.assignments.heldout import checkout_root

    root = checkout_root(assignment.folder)
    if root is None:
        raise AssignmentError(f"{assignment.folder}: the public test split is drawn by the reference package, and no "
                              "project checkout holds this folder; grade from the checkout, or put the split in "
                              "data/test beside assignment.toml")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from reference.synthetic import generate_image

    images, masks = [], []
    for i in range(PUBLIC_TEST_COUNT):
        image, mask = generate_image(np.random.default_rng([PUBLIC_SEED, PUBLIC_TEST_INDEX, i]), PUBLIC_SIZE)
        images.append(np.moveaxis(image, -1, 0).astype(np.float32) / 255)
        masks.append(mask.astype(np.int64))
    return tuple(images), tuple(masks)


def build_tests(assignment):
    tests = []
    enc = _encoders()
    limits = settings(assignment)
    images, masks = public_test_split(assignment)
    for key in enc.ENCODERS:
        enc.add_labels(key, LabelSet("public_test", images, ("reference",)))
    table_call = read_text_call("t.results", TABLE_FILE, MAX_TABLE_BYTES)
    target = np.concatenate([m.ravel() for m in masks])

    @register(tests, id="table.format", name=f"{TABLE_FILE}: one row per encoder, in the documented columns",
              points=1, tag="table", calls=[table_call],
              hint=f"Write {TABLE_FILE} beside your notebook with the header {','.join(COLUMNS)} and one row per "
                   "encoder: Dice as fractions (0.874), the parameter count as digits.")
    def _format(answers):
        read_table(answers, table_call.id, enc.ENCODERS)

    for key in enc.ENCODERS:
        _register_rows(tests, enc, key, table_call, target, limits)
    return tests


def _register_rows(tests, enc, key, table_call, target, limits):
    label, weights = enc.LABELS[key], enc.weights_file(key)
    tolerance, relative = limits["table_dice_tolerance"], limits["table_parameter_tolerance"]

    @register(tests, id=f"table.{key}_dice", name=f"{TABLE_FILE}: {key}'s Dice is what its model scores",
              points=2, tag="table", calls=enc.CALLS[key] + [table_call],
              hint=f"Report the Dice of the model you submit ({weights}) on the test split, per class, pooled over "
                   "all pixels of the split (as dice_per_class of all predictions against all masks).")
    def _dice(answers):
        row = read_table(answers, table_call.id, enc.ENCODERS)[key]
        if not enc.loaded(answers, key):
            raise Failure(f"no {weights} was found beside your notebook, so the grader cannot measure the model "
                          f"your table describes: save model.state_dict() of {label} as {weights}")
        _, verification, _ = enc.verified(answers, key)
        try:
            labels = verification.label_set("public_test")["reference"]
        except VerificationFailed as err:
            raise Failure(f"{weights} could not be scored on the test split: {err}")
        measured = per_class(np.concatenate([label.ravel() for label in labels]), target, 3)
        answers.keep("dice", dict(zip(CLASSES, measured.tolist())))
        off = []
        for name, reported, ours in zip(CLASSES, row.dice, measured.tolist()):
            gap = reported - ours
            if abs(gap) > tolerance:
                off.append(f"the {name} Dice is {reported:.3f} in the table but {ours:.3f} as measured "
                           f"({abs(gap):.3f} {'higher' if gap > 0 else 'lower'})")
        if off:
            raise Failure(f"for {key}, {'; '.join(off)}; the grader scores {weights} on the test split and allows "
                          f"{tolerance:.3f} either way. Report the test-split Dice of the model you submit.")

    @register(tests, id=f"table.{key}_parameters", name=f"{TABLE_FILE}: {key}'s parameter count is its model's",
              points=1, tag="table", calls=enc.CALLS[key] + [table_call],
              hint=f"Count the parameters of {label} as sum(p.numel() for p in model.parameters()).")
    def _parameters(answers):
        row = read_table(answers, table_call.id, enc.ENCODERS)[key]
        graph, _ = enc.accepted(answers, key)
        count = enc.conv_weights(graph)
        if count == 0 or abs(row.parameters - count) > relative * count:
            raise Failure(f"for {key}, the table says {row.parameters:,} parameters, but the exported {label} holds "
                          f"{count:,} convolution weights, which sum(p.numel() for p in model.parameters()) exceeds "
                          f"by 0.2% at most (batch norms fold into the convolutions on export). The table is off by "
                          f"{abs(row.parameters - count) / max(count, 1):.1%}; within {relative:.1%} passes: count "
                          "the parameters of the model you submit.")
