"""Shared fixtures: a Prefect test harness (temporary API, session-wide), tiny real corpora, a data home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    """No spare processes (cli/spare.py) from the commands tests start: each runs in its own process, as
    the tests of signals and resumption need; tests/cli/test_spare.py turns them on for itself."""
    os.environ["REPLEARN_WARM"] = "0"


@pytest.fixture(scope="session")
def prefect_harness():
    """A throw-away Prefect API for flow and task tests (no server needed)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty data home; MLFLOW_TRACKING_URI unset so the SQLite store under it is used."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture(scope="session")
def lee_corpus() -> Path:
    """The Lee news corpus shipped in the gensim wheel (about 60k words of real text)."""
    from gensim.test.utils import datapath

    return Path(datapath("lee_background.cor"))


@pytest.fixture
def corpus_halves(tmp_path, lee_corpus):
    """A corpus folder holding the first half of the Lee corpus (``a.txt``), and the second half (``b.txt``, outside
    it) to add later: a folder that grows, for the warm-start tests."""
    lines = lee_corpus.read_text().splitlines(keepends=True)
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("".join(lines[: len(lines) // 2]))
    later = tmp_path / "b.txt"
    later.write_text("".join(lines[len(lines) // 2:]))
    return folder, later


@pytest.fixture(scope="session")
def books_corpus() -> Path:
    path = SHARED_DATA / "corpus" / "books.txt.gz"
    if not path.exists():
        pytest.skip(f"{path} not present (shared data lives beside the repo in ../shared/data)")
    return path


@pytest.fixture
def one_thread():
    """One torch intra-op thread: bit-identical reruns, and no oversubscription on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
