"""SST-2 (Socher et al. 2013, as in GLUE): binary sentiment of movie-review phrases and sentences.
The hub hides the test labels, so from the hub the GLUE validation split serves as test and a
validation split is carved from train; local copies with test labels use their own splits."""

from bench.text_task import text_task

TASK = text_task(
    "sst2",
    "stanfordnlp/sst2",
    text_column="sentence",
    max_length=64,
    hub_test_split="validation",
    description="SST-2 sentence sentiment (binary)",
    references="Socher et al. 2013; Kim 2014",
)
