"""slmscale: the scaling study of speech language models, end to end.

Reproduces and extends Cuervo & Marxer, "Scaling Properties of Speech Language
Models" (EMNLP 2024). See README.md for the two commands, docs/DESIGN.md for the
stages and the files between them, and docs/PAPER.md for the paper's numbers.
"""

__version__ = "0.1.0"
