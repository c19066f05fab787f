"""Fixtures: generated datasets that are not 8-bit RGB (see `datasets.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reference.datasets import fluorescence4, grey16, write_variant


@pytest.fixture(scope="session")
def grey16_dataset(tmp_path_factory) -> Path:
    return write_variant(tmp_path_factory.mktemp("grey16") / "data", grey16)


@pytest.fixture(scope="session")
def fluorescence4_dataset(tmp_path_factory) -> Path:
    return write_variant(tmp_path_factory.mktemp("fluorescence4") / "data", fluorescence4)
