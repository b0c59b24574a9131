"""Governed training and monitoring pipelines for fastai models, orchestrated by Prefect."""

__version__ = "0.1.0"
