"""anet: train and compare AlexNet, ANet-c6 and VGG16 image classifiers from YAML configs."""

__version__ = "0.1.0"
