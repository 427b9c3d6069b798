from collections import Counter
from dataclasses import dataclass

import pytest

from quotio_core.pool.selector import STRATEGIES, Selector


@dataclass(frozen=True)
class Cand:
    id: str
    priority: int = 0
    weight: int = 1


ABC = [Cand("a"), Cand("b"), Cand("c")]


def picks(sel: Selector, key: str, cands: list[Cand], n: int) -> list[str]:
    return [sel.pick(key, cands).id for _ in range(n)]


def test_round_robin_cycles() -> None:
    assert picks(Selector("round-robin"), "k", ABC, 7) == list("abcabca")


def test_round_robin_is_the_default() -> None:
    assert Selector().strategy == "round-robin"


def test_round_robin_order_does_not_depend_on_input_order() -> None:
    sel = Selector("round-robin")
    assert [sel.pick("k", list(reversed(ABC))).id for _ in range(3)] == list("abc")


def test_round_robin_cursor_per_key_is_independent() -> None:
    sel = Selector("round-robin")
    seq = [sel.pick(key, ABC).id for key in ["x", "x", "y", "x", "y", "z"]]
    #        x:a   x:b   y:a   x:c   y:b   z:a
    assert seq == ["a", "b", "a", "c", "b", "a"]


def test_fill_first_always_first() -> None:
    sel = Selector("fill-first")
    assert picks(sel, "k", [Cand("b"), Cand("a"), Cand("c")], 5) == ["a"] * 5


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_only_the_highest_priority_tier(strategy: str) -> None:
    cands = [Cand("low", priority=0, weight=100), Cand("hi1", priority=5), Cand("hi2", priority=5),
             Cand("mid", priority=3)]
    got = set(picks(Selector(strategy), "k", cands, 20))
    assert got <= {"hi1", "hi2"}
    if strategy != "fill-first":
        assert got == {"hi1", "hi2"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_single_candidate(strategy: str) -> None:
    assert picks(Selector(strategy), "k", [Cand("only", weight=0)], 3) == ["only"] * 3


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_negative_priority_tier(strategy: str) -> None:
    cands = [Cand("a", priority=-2), Cand("b", priority=-1)]
    assert set(picks(Selector(strategy), "k", cands, 4)) == {"b"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_candidates_raises(strategy: str) -> None:
    with pytest.raises(ValueError):
        Selector(strategy).pick("k", [])


@pytest.mark.parametrize("strategy", ["random", "", "round_robin", "least-used"])
def test_unknown_strategy_raises(strategy: str) -> None:
    with pytest.raises(ValueError, match="routing strategy"):
        Selector(strategy)


def test_weighted_5_1_1_is_smooth() -> None:
    cands = [Cand("a", weight=5), Cand("b", weight=1), Cand("c", weight=1)]
    seq = picks(Selector("weighted-round-robin"), "k", cands, 7)
    assert Counter(seq) == {"a": 5, "b": 1, "c": 1}
    # Interleaved, not a burst of five a's then b and c.
    assert seq != ["a"] * 5 + ["b", "c"]
    assert seq == ["a", "a", "b", "a", "c", "a", "a"]
    # And it repeats that cycle.
    assert picks(Selector("weighted-round-robin"), "k", cands, 14) == seq * 2


@pytest.mark.parametrize(
    "weights",
    [(1, 1), (2, 1), (3, 2, 1), (10, 1), (4, 4, 2), (7, 3, 0)],
)
def test_weighted_distribution_matches_weights(weights: tuple[int, ...]) -> None:
    cands = [Cand(f"c{i}", weight=w) for i, w in enumerate(weights)]
    total = sum(weights)
    rounds = 3
    seq = picks(Selector("weighted-round-robin"), "k", cands, total * rounds)
    counts = Counter(seq)
    for i, w in enumerate(weights):
        assert counts.get(f"c{i}", 0) == w * rounds


def test_weighted_zero_weight_never_picked_while_others_positive() -> None:
    cands = [Cand("a", weight=0), Cand("b", weight=1), Cand("c", weight=-3)]
    assert set(picks(Selector("weighted-round-robin"), "k", cands, 10)) == {"b"}


def test_weighted_all_zero_falls_back_to_first() -> None:
    cands = [Cand("b", weight=0), Cand("a", weight=0)]
    assert picks(Selector("weighted-round-robin"), "k", cands, 3) == ["a"] * 3


def test_weighted_keys_are_independent() -> None:
    sel = Selector("weighted-round-robin")
    cands = [Cand("a", weight=2), Cand("b", weight=1)]
    x = [sel.pick("x", cands).id for _ in range(3)]
    y = [sel.pick("y", cands).id for _ in range(3)]
    assert x == y
    assert Counter(x) == {"a": 2, "b": 1}


def test_weighted_ignores_weight_in_other_strategies() -> None:
    cands = [Cand("a", weight=5), Cand("b", weight=1)]
    assert picks(Selector("round-robin"), "k", cands, 4) == ["a", "b", "a", "b"]
