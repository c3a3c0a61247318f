"""rewrite: change the rules of a pretrained image generator by editing one layer.

Implements "Rewriting a Deep Generative Model" (Bau et al., ECCV 2020).

Usage::

    from rewrite import load_model, generate
    G = load_model("dcgan-digiface64")
    images = generate(G, range(16))          # uint8 [16, 64, 64, 3]
"""

from .models import load_model
from .sampling import generate

__version__ = "0.1.0"
__all__ = ["generate", "load_model", "__version__"]
