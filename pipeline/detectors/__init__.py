"""Face and person detectors behind one interface, and the cache of their weights."""
from .base import Detector
from .cache import ModelError, models_dir
from .registry import (MODELS, FileInfo, ModelInfo, create_detector, fetch_model, list_models,
                       model_paths, prepare)

__all__ = ["MODELS", "Detector", "FileInfo", "ModelError", "ModelInfo", "create_detector",
           "fetch_model", "list_models", "model_paths", "models_dir", "prepare"]
