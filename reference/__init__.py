"""The instructor's reference solution: the full pipeline, and itself a valid submission.

Every name a submission must define (see CONTRACT.md) is importable from here.
"""

from reference.augmentation import augment
from reference.data import load_split
from reference.inference import overlay, predict
from reference.losses import dice_ce_loss
from reference.metrics import dice_per_class, iou_per_class, pixel_accuracy
from reference.models import UNet, build_model, encoder_feature_shapes

__all__ = ["load_split", "augment", "UNet", "build_model", "encoder_feature_shapes", "dice_per_class",
           "iou_per_class", "pixel_accuracy", "dice_ce_loss", "predict", "overlay"]
