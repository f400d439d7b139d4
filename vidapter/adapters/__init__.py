"""Adaptation methods, one module each; importing a module registers its method in ``registry.METHODS``, and the
order of the imports below is the order ``vidapter methods`` lists them in."""

# isort: off
from vidapter.adapters import aim, lora, zeroi2v, st_adapter, evl, vifi  # noqa: F401  (each registers its method)

# isort: on
from vidapter.adapters.registry import METHODS, Method, Official, get_method, register_method

__all__ = ["METHODS", "Method", "Official", "get_method", "register_method"]
