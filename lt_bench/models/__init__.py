"""Models: ``create_model`` over open_clip, plus tiny configs for tests and the demo."""

from .factory import TINY_MODELS, ClipBundle, ModelInfo, architecture, create_model, list_models
from .transforms import ballad_train_transform

__all__ = ["TINY_MODELS", "ClipBundle", "ModelInfo", "architecture", "create_model", "list_models",
           "ballad_train_transform"]
