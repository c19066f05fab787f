"""The grading engine for the U-Net urothelial assignment (console script `grader`)."""

__version__ = "0.2.2"
