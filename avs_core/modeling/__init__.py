"""The paper models (GAVS, AV2T-SAM, TeSO on Mask2Former and on SAM) behind one interface."""
from __future__ import annotations

from .base import AVSModel
from .build import MODEL_NAMES, build_model, load_model_config
from .checkpoint import load_checkpoint, read_metadata, save_checkpoint
from .predictor import ModelPredictor

__all__ = ["AVSModel", "MODEL_NAMES", "ModelPredictor", "build_model", "load_checkpoint", "load_model_config",
           "read_metadata", "save_checkpoint"]
