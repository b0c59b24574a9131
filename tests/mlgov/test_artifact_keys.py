"""Artifact keys: one per (model, artifact), kebab-case, and today's keys unchanged.

(Moved from the governance tests; it tests `mlgov.reporting.artifact_key`.)
"""

from __future__ import annotations


def test_artifact_keys_are_injective_and_keep_todays_keys() -> None:
    import itertools
    import re

    from mlgov.reporting import artifact_key

    assert artifact_key("churn-demo", "model-card") == "churn-demo-model-card"
    assert artifact_key("m2", "metrics") == "m2-metrics"
    alphabet = "ab1.-_"
    names = {
        "".join(chars)
        for length in range(1, 5)
        for chars in itertools.product(alphabet, repeat=length)
        if chars[0] not in ".-_"
    }
    names |= {"a.b", "a_b", "a-b", "a--b", "a.-b", "x" * 64, "churn.v2_final"}
    suffixes = ("model-card", "model-card-md", "metrics", "monitoring", "batch-drift")
    keys = {(name, suffix): artifact_key(name, suffix) for name in names for suffix in suffixes}
    assert len(set(keys.values())) == len(keys), "two (model, artifact) pairs share a key"
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in keys.values())
    assert len({artifact_key(n, "model-card") for n in ("a.b", "a_b", "a-b")}) == 3
    clean = [n for n in names if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n)]
    assert all(artifact_key(n, "metrics") == f"{n}-metrics" for n in clean)
