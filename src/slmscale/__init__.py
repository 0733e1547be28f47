"""slmscale: the scaling study of speech language models, end to end.

Reproduces and extends Cuervo & Marxer, "Scaling Properties of Speech Language
Models" (EMNLP 2024). See README.md for the two commands and DESIGN in docs.
"""

__version__ = "0.1.0"
