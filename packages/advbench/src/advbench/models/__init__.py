"""Registered architectures: the hand-crafted baselines of the paper's Table 1 and a small CNN."""

from .densenet import DenseNet121
from .registry import ENTRY_POINT_GROUP, Classifier, build_model, list_models, register_model
from .resnet import PreActResNet18, ResNet18
from .small import SmallCNN
from .wideresnet import WideResNet

register_model("resnet18")(ResNet18)
register_model("preact_resnet18")(PreActResNet18)
register_model("densenet121")(DenseNet121)
register_model("wrn34_10")(lambda num_classes=10: WideResNet(num_classes, depth=34, width=10))
register_model("wide_resnet")(WideResNet)
register_model("small_cnn")(SmallCNN)

__all__ = ["ENTRY_POINT_GROUP", "Classifier", "DenseNet121", "PreActResNet18", "ResNet18", "SmallCNN", "WideResNet",
           "build_model", "list_models", "register_model"]
