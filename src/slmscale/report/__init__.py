"""The study report: the figures and tables of Cuervo & Marxer 2024 ("Scaling Properties
of Speech Language Models", EMNLP) redrawn from a sweep's results.csv."""
