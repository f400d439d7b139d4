"""Draws docs/images/aim_block.png, the AIM block as vidapter builds it (vidapter/adapters/aim.py, AIMBlock.forward):
frozen tensors in grey, trained ones in orange, the shapes between steps for ViT-B/16 at T = 8.

    python docs/images/aim_block.py            # writes docs/images/aim_block.png next to this file
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

FROZEN, TRAINED, LAYOUT = "#d9d9d9", "#f4a259", "#bcd4e6"


def box(ax, x, y, text, color, w=2.6, h=0.55):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=color, ec="#333333"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def arrow(ax, x0, y0, x1, y1, text="", style="-|>"):
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle=style, mutation_scale=10, color="#333333", lw=1))
    if text:
        ax.text((x0 + x1) / 2 + 0.1, (y0 + y1) / 2, text, fontsize=7, color="#1f4e79", va="center")


def plus(ax, x, y):
    ax.add_patch(plt.Circle((x, y), 0.17, fc="white", ec="#333333"))
    ax.text(x, y, "+", ha="center", va="center", fontsize=11)


def main() -> Path:
    fig, ax = plt.subplots(figsize=(11, 12.5))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 13.5)
    ax.axis("off")
    ax.set_title("One AIM block as vidapter builds it (ViT-B/16, T = 8: B·T frames of N = 197 tokens, D = 768)",
                 fontsize=10)  # fmt: skip

    # residual stream down the left, branches to the right
    x_main, x_br = 1.6, 5.5
    y = 12.8
    box(ax, x_main, y, "x: (B·T, N, D)", "white", w=2.4)
    # temporal pass
    box(ax, x_br, 12.1, "rearrange (b t) n d -> (b n) t d\n(B·N, T, D): T frames per token", LAYOUT, w=3.6, h=0.7)
    arrow(ax, x_main + 1.2, y, x_br - 1.8, 12.1)
    box(ax, x_br, 11.1, "norm1 (LayerNorm, frozen)", FROZEN)
    box(ax, x_br, 10.3, "T-adapter-in, skip (SSv2 only)\nD -> D/4 -> D, GELU", TRAINED, w=3.2, h=0.7)
    box(ax, x_br, 9.3, "attn: frozen qkv, proj\nsoftmax over the T frames", FROZEN, w=3.2, h=0.7)
    box(ax, x_br, 8.35, "T-adapter, no skip\nD -> D/4 -> D, GELU, zero init", TRAINED, w=3.2, h=0.7)
    box(ax, x_br, 7.45, "rearrange back -> (B·T, N, D), drop-path", LAYOUT, w=3.6)
    for y0, y1 in ((11.75, 11.38), (10.82, 10.65), (9.95, 9.65), (8.95, 8.7), (8.0, 7.72)):
        arrow(ax, x_br, y0, x_br, y1)
    plus(ax, x_main, 7.45)
    arrow(ax, x_br - 1.8, 7.45, x_main + 0.17, 7.45)
    arrow(ax, x_main, y - 0.28, x_main, 7.62)
    ax.text(x_br + 2.0, 9.3, "the same frozen attention\nand norm1 as the spatial\npass: nothing new but\nthe adapters",
            fontsize=7.5, va="center", color="#555555")  # fmt: skip
    # spatial pass
    box(ax, x_br, 6.5, "norm1 (frozen)", FROZEN)
    box(ax, x_br, 5.7, "attn: frozen, over the N tokens\nof each frame", FROZEN, w=3.2, h=0.7)
    box(ax, x_br, 4.75, "S-adapter, skip\nD -> D/4 -> D, GELU, zero init", TRAINED, w=3.2, h=0.7)
    arrow(ax, x_main + 0.17, 7.3, x_br - 1.3, 6.5)
    arrow(ax, x_br, 6.22, x_br, 6.05)
    arrow(ax, x_br, 5.35, x_br, 5.1)
    plus(ax, x_main, 4.75)
    arrow(ax, x_br - 1.6, 4.75, x_main + 0.17, 4.75)
    arrow(ax, x_main, 7.28, x_main, 4.92)
    # MLP and joint adapter
    box(ax, x_br, 3.8, "norm2 (frozen) -> xn", FROZEN)
    box(ax, x_br - 1.7, 2.75, "MLP, frozen\nD -> 4D -> D, QuickGELU", FROZEN, w=2.8, h=0.7)
    box(ax, x_br + 1.8, 2.75, "MLP-adapter, no skip\nx s (0.5, SSv2 1.0), drop-path", TRAINED, w=3.1, h=0.7)
    arrow(ax, x_main + 0.17, 4.6, x_br - 1.3, 3.8)
    arrow(ax, x_br - 0.4, 3.52, x_br - 1.7, 3.1)
    arrow(ax, x_br + 0.4, 3.52, x_br + 1.8, 3.1)
    plus(ax, x_main, 1.7)
    arrow(ax, x_br - 1.7, 2.4, x_main + 0.17, 1.75)
    arrow(ax, x_br + 1.8, 2.4, x_main + 0.15, 1.62)
    arrow(ax, x_main, 4.58, x_main, 1.87)
    box(ax, x_main, 0.9, "x: (B·T, N, D)", "white", w=2.4)
    arrow(ax, x_main, 1.53, x_main, 1.18)
    for yy, text in ((10.0, "temporal\nadaptation"), (5.6, "spatial\nadaptation"), (3.0, "joint\nadaptation")):
        ax.text(0.15, yy, text, fontsize=8, rotation=90, va="center", color="#7a4a14")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, fc=c, ec="#333333") for c in (FROZEN, TRAINED, LAYOUT)],
              labels=["frozen image weights", "trained (zero-initialised second layer)", "layout change (no weights)"],
              loc="lower right", fontsize=8, frameon=False)  # fmt: skip
    out = Path(__file__).with_suffix(".png")
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(f"wrote {main()}")
