"""Longitudinal patient analysis (issue 10): per-visit wound area and tissue composition,
predicted against truth, and how well they track healing."""
