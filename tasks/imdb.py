"""IMDB movie reviews (Maas et al. 2011): binary sentiment, 25,000 train / 25,000 test reviews.
No validation split: 10% of train is carved (stratified, seeded). Reviews: median 174 words, 95th
percentile 598; counting punctuation as tokens, max_length=400 truncates 18% of training reviews."""

from bench.text_task import text_task

TASK = text_task(
    "imdb",
    "stanfordnlp/imdb",
    text_column="text",
    max_length=400,
    description="IMDB review sentiment (binary), 25k train / 25k test",
    references="Maas et al. 2011",
)
