"""jaxbrain: brain-likeness of vision networks, every layer of every model, in JAX."""

__version__ = "0.1.0"
