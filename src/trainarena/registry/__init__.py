"""The model registry: trained models as Hugging Face-layout folders with model cards, listed,
exported, and published to the Hub when the operator configures it (docs/api.md, "Models")."""

from trainarena.registry.models import ModelSource, register_model

__all__ = ["ModelSource", "register_model"]
