"""Config validation helpers: every error names the field, the value and what was expected."""

from __future__ import annotations

from typing import Any


def check_positive(**fields: Any) -> None:
    """Raise ValueError for the first field that is not a positive integer."""
    for name, value in fields.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name}={value!r}: expected a positive integer")


def check_divisible(name: str, value: int, by_name: str, by: int) -> None:
    """Raise ValueError unless `value % by == 0`."""
    if value % by != 0:
        raise ValueError(f"{name}={value}: expected a multiple of {by_name}={by}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    """Raise ValueError unless `low <= value <= high`."""
    if not (low <= value <= high):
        raise ValueError(f"{name}={value}: expected a value in [{low}, {high}]")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise ValueError unless `value in choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {list(choices)}")


def probe_fields(*, hidden_size: int, num_attention_heads: int, probe_type: str, probe_num_queries: int,
                 probe_num_self_attention_layers: int, probe_num_attention_heads: int | None,
                 probe_intermediate_size: int | None, probe_layer_norm_eps: float, freeze_encoder: bool
                 ) -> dict[str, Any]:
    """Validate the classification-probe fields of an encoder config and resolve their defaults (heads: the
    encoder's; MLP width: 4 * hidden_size). Returns the fields to store, resolved."""
    check_choice("probe_type", probe_type, ("attentive", "linear"))
    probe_num_attention_heads = probe_num_attention_heads or num_attention_heads
    probe_intermediate_size = probe_intermediate_size or 4 * hidden_size
    check_positive(probe_num_queries=probe_num_queries, probe_num_attention_heads=probe_num_attention_heads,
                   probe_intermediate_size=probe_intermediate_size)
    if not isinstance(probe_num_self_attention_layers, int) or probe_num_self_attention_layers < 0:
        raise ValueError(f"probe_num_self_attention_layers={probe_num_self_attention_layers!r}: expected an "
                         "integer >= 0")
    check_divisible("hidden_size", hidden_size, "probe_num_attention_heads", probe_num_attention_heads)
    return {"probe_type": probe_type, "probe_num_queries": probe_num_queries,
            "probe_num_self_attention_layers": probe_num_self_attention_layers,
            "probe_num_attention_heads": probe_num_attention_heads, "probe_intermediate_size": probe_intermediate_size,
            "probe_layer_norm_eps": probe_layer_norm_eps, "freeze_encoder": freeze_encoder}
