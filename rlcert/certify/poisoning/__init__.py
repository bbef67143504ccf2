"""Certificates against training-set poisoning: DPA and SS-DPA."""
