"""Batch scoring with a registered version: chunked reading, the contract per chunk, atomic output.

No Prefect here: `tasks/scoring.py` and `flows/score_batch.py` wrap these functions, and
`mlgov.load_model` scores in-memory frames with the same output columns.
"""
