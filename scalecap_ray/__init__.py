"""scalecap-ray: dense, low-hallucination image captions (the ScaleCap method) on Ray."""

__version__ = "0.1.0"
