"""Errors of the execution layer. `SubmissionError`s are the student's to fix and end up in
results.json; the others are infrastructure failures."""


class SubmissionError(Exception):
    """A submission that cannot be run at all; the message tells the student what to do."""


class NotebookUnreadable(SubmissionError):
    def __init__(self, name: str, detail: str):
        super().__init__(f"{name} is not a valid notebook ({detail}). Open it in Jupyter, make sure it "
                         "shows your cells, and save it again; do not edit the .ipynb file by hand.")


class NoSubmissionFile(SubmissionError):
    pass


class UntrustedOutputError(Exception):
    """Something the sandbox wrote back is malformed, too large, or not a plain file."""
