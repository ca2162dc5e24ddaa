"""Reading Prometheus text the way Prometheus would (prometheus_client's parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, for every sample in ``text``.

    The parser raises ValueError on anything that is not valid exposition text.
    """
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in found, f"duplicate sample {key}"
            found[key] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def types(text: str) -> dict[str, str]:
    """Family name -> its TYPE (counter, gauge)."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}
