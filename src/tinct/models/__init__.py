"""Model families (registered by name), checkpoints and shipped weights.

>>> from tinct.models import create_model, list_models
>>> "tinctnet" in list_models()
True
"""

from tinct.models.checkpoint import (
    DEFAULT_MODEL,
    CheckpointInfo,
    load,
    read_checkpoint_info,
    read_safetensors_header,
    resolve_model_path,
    save_checkpoint,
    shipped_models,
)
from tinct.models.registry import UnknownModelError, build_config, create_model, list_models, model_class, register_model

__all__ = [
    "DEFAULT_MODEL",
    "CheckpointInfo",
    "UnknownModelError",
    "build_config",
    "create_model",
    "list_models",
    "load",
    "model_class",
    "read_checkpoint_info",
    "read_safetensors_header",
    "register_model",
    "resolve_model_path",
    "save_checkpoint",
    "shipped_models",
]
