"""Rotten Tomatoes (Pang & Lee 2005): 10,662 movie-review snippets, binary sentiment."""

from bench.text_task import text_task

TASK = text_task(
    "rotten-tomatoes",
    "cornell-movie-review-data/rotten_tomatoes",
    text_column="text",
    max_length=64,
    description="Rotten Tomatoes snippet sentiment (binary)",
    references="Pang & Lee 2005",
)
