"""A MONAI segmentation worker speaking the cdss.ai-jobs protocol (see README.md)."""

__version__ = "0.1.0"
