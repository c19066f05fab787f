"""Finding the submissions of a batch: a folder per student, loose files, or an LMS download
(Canvas or Moodle, as a zip or unpacked), turned into one folder or file per student."""

from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from grader.batch.hashing import SubmissionHashError, submission_hash
from grader.batch.layout import SUBMISSIONS_DIR, readable, slug, student_key
from grader.errors import UserError
from grader.fileio import remove_tree
from grader.gradebook import Identity

__all__ = ["BatchInputError", "Submission", "SubmissionHashError", "discover", "slug", "student_key",
           "submission_hash", "unpack_zip"]

# Canvas: lastfirst_12345_67890_notebook.ipynb, or lastfirst_LATE_12345_67890_...; the first number is
# the Canvas user id, the second the submission id. Resubmitted files get "-1", "-2" before the extension.
CANVAS = re.compile(r"^(?P<name>[a-z0-9]+)(?:_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$")
# Moodle: "Ada Lovelace_123456_assignsubmission_file_" as a folder, or as a prefix of each file.
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.*)$")
RESUBMITTED = re.compile(r"^(?P<stem>.+?)-\d+(?P<ext>\.[A-Za-z0-9]+)$")
GRADABLE = (".ipynb", ".py")
MAX_UNPACKED_BYTES = 8 * 2 ** 30


class BatchInputError(UserError, ValueError):
    """A batch folder or download that cannot be graded as given; the message says what to change."""


@dataclass(frozen=True)
class Submission:
    identity: Identity
    path: Path  # a notebook, a module, or a folder holding one
    revision: str = ""  # the git commit graded, for --from-git
    unavailable: str = ""  # why there is nothing to run (no commit before the deadline); graded as zero

    @property
    def student(self) -> str:
        return self.identity.student


def unpack_zip(archive: Path, into: Path) -> Path:
    """Extract an LMS download, refusing names that leave the folder, links, and oversized contents."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise BatchInputError(f"{archive}: unpacks to more than {MAX_UNPACKED_BYTES // 2 ** 30} GiB")
            for m in members:
                target = (into / m.filename).resolve()
                is_link = (m.external_attr >> 16) & 0o170000 == 0o120000
                if is_link or not target.is_relative_to(into.resolve()):
                    raise BatchInputError(f"{archive}: entry {m.filename!r} is a link or leaves the folder")
            if not into.is_dir():
                into.parent.mkdir(parents=True, exist_ok=True)
                staging = into.with_name(into.name + ".partial")
                remove_tree(staging)
                zf.extractall(staging)
                staging.rename(into)
    except zipfile.BadZipFile as err:
        raise BatchInputError(f"{archive}: not a zip file ({err})") from err
    return into


def _original_name(name: str) -> str:
    """`model-1.pt` -> `model.pt`: Canvas numbers resubmitted files."""
    match = RESUBMITTED.match(name)
    return f"{match['stem']}{match['ext']}" if match else name


def _gather(groups: dict[Identity, list[Path]], names: dict[Path, str], staging: Path) -> list[Submission]:
    """Copy each student's loose LMS files into one folder, under their original names."""
    subs = []
    for identity, files in groups.items():
        folder = staging / identity.student
        if len(files) == 1 and files[0].suffix in GRADABLE and not files[0].is_dir():
            target = folder / names[files[0]]
        else:
            target = folder
        partial = staging / f".{identity.student}.partial"  # rebuilt each time: the download may be newer
        remove_tree(partial)
        partial.mkdir(parents=True)
        for file in sorted(files):
            copy = shutil.copytree if file.is_dir() else shutil.copy2
            copy(file, partial / names[file])
        remove_tree(folder)
        partial.rename(folder)
        subs.append(Submission(identity, target))
    return subs


def _identity(key: str, name: str, lms_id: str = "") -> Identity:
    """A student key that never takes a name the batch writes, and their name as readable text."""
    return Identity(student_key(key), readable(name), lms_id)


def discover(folder: Path, out: Path) -> list[Submission]:
    """Every submission in `folder` (or in a zip download), sorted by student key. LMS files are
    gathered under `out/_submissions`; `out` itself is skipped when it lies inside `folder`."""
    folder, out = Path(folder), Path(out).resolve()
    staging = out / SUBMISSIONS_DIR
    if not folder.exists():
        raise BatchInputError(f"{folder}: no such folder or zip file")
    if folder.is_file():
        if folder.suffix.lower() != ".zip":
            raise BatchInputError(f"{folder}: expected a folder of submissions or an LMS zip download")
        info = folder.stat()  # a newer download unpacks into a new folder
        key = hashlib.sha256(f"{folder.resolve()}:{info.st_size}:{info.st_mtime_ns}".encode()).hexdigest()[:12]
        folder = unpack_zip(folder, staging / f"unpacked-{key}")
    subs: list[Submission] = []
    groups: dict[Identity, list[Path]] = defaultdict(list)
    names: dict[Path, str] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_", "__MACOSX")) or entry.resolve() == out:
            continue
        moodle, canvas = MOODLE.match(entry.name), CANVAS.match(entry.name)
        if moodle and entry.is_dir():
            identity = _identity(f"{moodle['name']}_{moodle['uid']}", moodle["name"], moodle["uid"])
            subs.append(Submission(identity, entry))
        elif moodle:
            identity = _identity(f"{moodle['name']}_{moodle['uid']}", moodle["name"], moodle["uid"])
            groups[identity].append(entry)
            names[entry] = _original_name(moodle["file"])
        elif canvas and entry.is_file():
            identity = _identity(f"{canvas['name']}_{canvas['uid']}", canvas["name"], canvas["uid"])
            groups[identity].append(entry)
            names[entry] = _original_name(canvas["file"])
        elif entry.is_dir():
            subs.append(Submission(_identity(entry.name, entry.name), entry))
        elif entry.suffix in GRADABLE:
            subs.append(Submission(_identity(entry.stem, entry.stem), entry))
    subs += _gather(groups, names, staging / "gathered")
    seen: dict[str, Submission] = {}
    for sub in subs:
        if sub.student in seen:
            raise BatchInputError(f"{folder}: {seen[sub.student].path.name} and {sub.path.name} are both student "
                                  f"{sub.student!r}; rename one")
        seen[sub.student] = sub
    if not subs:
        raise BatchInputError(f"{folder}: no submissions found (expected a folder per student, .ipynb/.py files, "
                              "or a Canvas/Moodle download)")
    return sorted(subs, key=lambda s: s.student)
