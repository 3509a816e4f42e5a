"""BettiMemo and the Betti job's use of it: lists measured before are answered by content, exactly."""

from __future__ import annotations

import numpy as np

from lightning_topo.monitoring import jobs
from lightning_topo.monitoring.memo import BETTI_MEMO, BettiMemo
from lightning_topo.topology import NeighbourLists, numpy_neighbour_lists

SQUARE = NeighbourLists(4, 4, "knn", np.array([[0, 1, 3], [1, 0, 2], [2, 1, 3], [3, 0, 2]]), None)


def _circle(n: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(t), np.sin(t)], 1)


def test_the_key_depends_on_the_lists_and_the_options():
    key = BettiMemo.key(SQUARE, max_dim=1, scale=2.5)
    assert key == BettiMemo.key(NeighbourLists(4, 4, "knn", SQUARE.indices.copy(), None), max_dim=1, scale=2.5)
    assert key != BettiMemo.key(SQUARE, max_dim=2, scale=2.5)
    assert key != BettiMemo.key(SQUARE, max_dim=1, scale=1.5)
    other = SQUARE.indices.copy()
    other[0, 2] = 2
    assert key != BettiMemo.key(NeighbourLists(4, 4, "knn", other, None), max_dim=1, scale=2.5)
    assert key != BettiMemo.key(NeighbourLists(4, 4, "euclidean", None, np.array([[0], [1]])), max_dim=1, scale=2.5)
    fortran = np.asfortranarray(SQUARE.indices)  # the same values in another memory order: the same key
    assert key == BettiMemo.key(NeighbourLists(4, 4, "knn", fortran, None), max_dim=1, scale=2.5)


def test_the_memo_keeps_its_newest_entries_and_returns_copies():
    memo = BettiMemo(size=2)
    memo.put(b"a", [1, 0])
    memo.put(b"b", [2, 0])
    assert memo.get(b"a") == [1, 0]  # "a" is now the newest
    memo.put(b"c", [3, 0])
    assert memo.get(b"b") is None and memo.get(b"a") == [1, 0] and memo.get(b"c") == [3, 0]
    memo.get(b"a").append(9)
    assert memo.get(b"a") == [1, 0]
    memo.clear()
    assert memo.get(b"a") is None


def test_the_betti_job_computes_lists_once(monkeypatch):
    calls = []
    real = __import__("lightning_topo.topology", fromlist=["betti_from_neighbours"]).betti_from_neighbours

    def counted(lists, **options):
        calls.append(lists.n_unique)
        return real(lists, **options)

    monkeypatch.setattr("lightning_topo.topology.betti_from_neighbours", counted)
    circle = numpy_neighbour_lists(_circle(60), k=4)
    first = jobs.betti_job([(("a", "0"), circle), (("b", "0"), SQUARE)], max_dim=1, scale=2.5)
    again = jobs.betti_job([(("input", "0"), numpy_neighbour_lists(_circle(60), k=4))], max_dim=1, scale=2.5)
    assert [value for _, value, _ in first] == [[1, 1], [1, 0]]  # 2 hops fill the square in
    assert again[0][1] == [1, 1] and calls == [60, 4]  # the same cloud again: no second homology
    jobs.betti_job([(("a", "0"), circle)], max_dim=0, scale=2.5)  # other options: computed
    assert calls == [60, 4, 60]


def test_a_failure_is_not_remembered(monkeypatch):
    broken = NeighbourLists(3, 3, "knn", np.array([[0, 1], [1, 0]]), None)  # two rows for three points
    for _ in range(2):
        [(_, value, _)] = jobs.betti_job([(("a", "0"), broken)], max_dim=1, scale=2.5)
        assert value.startswith("ValueError")
    assert len(BETTI_MEMO._entries) == 0
