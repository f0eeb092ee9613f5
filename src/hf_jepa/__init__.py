"""hf_jepa: I-JEPA, V-JEPA 2, V-JEPA 2.1 and the V-JEPA 2-AC world model, the Hugging Face way.

Importing the package registers the model families with `AutoConfig` / `AutoModel` /
`AutoModelForPreTraining`, so `AutoModel.from_pretrained(folder_or_repo_id)` works for any of them.
"""

from hf_jepa.modeling.configuration_easy_ijepa import IJEPA_PRESETS, ImageJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2 import VJEPA2_PRESETS, VideoJepaConfig
from hf_jepa.modeling.configuration_easy_vjepa2_1 import VJEPA2_1_PRESETS, VideoJepa21Config
from hf_jepa.modeling.configuration_easy_vjepa2_ac import VJEPA2_AC_PRESETS, JepaWorldModelConfig
from hf_jepa.modeling.modeling_easy_ijepa import (
    ImageJepaForImageClassification,
    ImageJepaForPreTraining,
    ImageJepaModel,
    ImageJepaPredictor,
)
from hf_jepa.modeling.modeling_easy_vjepa2 import (
    VideoJepaForPreTraining,
    VideoJepaForVideoClassification,
    VideoJepaModel,
    VideoJepaPredictor,
)
from hf_jepa.modeling.modeling_easy_vjepa2_1 import (
    VideoJepa21ForPreTraining,
    VideoJepa21ForVideoClassification,
    VideoJepa21Model,
    VideoJepa21Predictor,
)
from hf_jepa.modeling.modeling_easy_vjepa2_ac import ActionConditionedPredictor, JepaWorldModel
from hf_jepa.registry import register_auto_classes

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "IJEPA_PRESETS",
    "VJEPA2_1_PRESETS",
    "VJEPA2_AC_PRESETS",
    "VJEPA2_PRESETS",
    "ActionConditionedPredictor",
    "ImageJepaConfig",
    "ImageJepaForImageClassification",
    "ImageJepaForPreTraining",
    "ImageJepaModel",
    "ImageJepaPredictor",
    "JepaWorldModel",
    "JepaWorldModelConfig",
    "VideoJepa21Config",
    "VideoJepa21ForPreTraining",
    "VideoJepa21ForVideoClassification",
    "VideoJepa21Model",
    "VideoJepa21Predictor",
    "VideoJepaConfig",
    "VideoJepaForPreTraining",
    "VideoJepaForVideoClassification",
    "VideoJepaModel",
    "VideoJepaPredictor",
]
