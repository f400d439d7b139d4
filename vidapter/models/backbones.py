"""The image backbone table: every architecture fact of every image model vidapter adapts, one row per structure,
and the published weight names that load into the rows. Each image family fills its part from its own module under
``models/families/`` (``models/family.py`` says what a family declares); this module imports them all, so that
``BACKBONES`` and ``WEIGHTS`` hold every registered row and name.
"""

from __future__ import annotations

from vidapter.models import families  # noqa: F401  (each family module registers itself)
from vidapter.models.family import (  # noqa: F401  (the table's public names)
    BACKBONES,
    CLIP_MEAN,
    CLIP_STD,
    FAMILIES,
    HALF,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TEXT_TOWERS,
    WEIGHTS,
    Family,
    TextFacts,
    ViTFacts,
    Weights,
    register_family,
)
