"""The image families, one module each; importing one registers it (``models.family.register_family``), and the
order of the imports below is the order of ``BACKBONES`` and of ``vidapter backbones``."""

# isort: off
from vidapter.models.families import clip, in21k, open_clip, siglip, dinov2, dinov3, pe_core, eva02  # noqa: F401

# isort: on
