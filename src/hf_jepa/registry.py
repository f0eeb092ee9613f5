"""Registration of the model families with transformers' Auto classes (run once on `import hf_jepa`)."""

from __future__ import annotations

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)

from hf_jepa.modeling.configuration_easy_ijepa import ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import VideoJepa21Config
from hf_jepa.modeling.configuration_easy_vjepa2_ac import JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_ijepa import (
    ImageJepaForImageClassification,
    ImageJepaForPreTraining,
    ImageJepaModel,
)
from hf_jepa.modeling.modeling_easy_vjepa2 import (
    VideoJepaForPreTraining,
    VideoJepaForVideoClassification,
    VideoJepaModel,
)
from hf_jepa.modeling.modeling_easy_vjepa2_1 import (
    VideoJepa21ForPreTraining,
    VideoJepa21ForVideoClassification,
    VideoJepa21Model,
)
from hf_jepa.modeling.modeling_easy_vjepa2_ac import JepaWorldModel

_done = False


def register_auto_classes() -> None:
    """Register configs and models with AutoConfig / AutoModel / AutoModelForPreTraining and the classifiers with
    AutoModelForImageClassification / AutoModelForVideoClassification (idempotent)."""
    global _done
    if _done:
        return
    for config_cls, base, pretraining in (
        (ImageJepaConfig, ImageJepaModel, ImageJepaForPreTraining),
        (VideoJepaConfig, VideoJepaModel, VideoJepaForPreTraining),
        (VideoJepa21Config, VideoJepa21Model, VideoJepa21ForPreTraining),
        (JepaWorldModelConfig, JepaWorldModel, None),
    ):
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, base, exist_ok=True)
        if pretraining is not None:
            AutoModelForPreTraining.register(config_cls, pretraining, exist_ok=True)
    AutoModelForImageClassification.register(ImageJepaConfig, ImageJepaForImageClassification, exist_ok=True)
    AutoModelForVideoClassification.register(VideoJepaConfig, VideoJepaForVideoClassification, exist_ok=True)
    AutoModelForVideoClassification.register(VideoJepa21Config, VideoJepa21ForVideoClassification, exist_ok=True)
    _done = True
