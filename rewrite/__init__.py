"""rewrite: change the rules of a pretrained image generator by editing one layer.

Implements "Rewriting a Deep Generative Model" (Bau et al., ECCV 2020).

Usage::

    from rewrite import load_model, generate
    G = load_model("dcgan-digiface64")
    images = generate(G, range(16))          # uint8 [16, 64, 64, 3]
"""

__version__ = "0.1.0"
__all__ = ["__version__", "generate", "load_model"]


def __getattr__(name: str):
    """``load_model`` and ``generate``, imported on first use: importing a room of the
    package (``rewrite.memory``, say) does not load the model families."""
    if name == "load_model":
        from .models import load_model

        return load_model
    if name == "generate":
        from .sampling.generate import generate

        return generate
    raise AttributeError(f"module 'rewrite' has no attribute {name!r}")
