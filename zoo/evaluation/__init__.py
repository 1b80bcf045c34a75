"""Judging models: the digit classifier, the scores, speed, and publishing scored weights.

Owns: `classifier` (zoo's own digit classifier and its features, shipped beside it),
`metrics` (FLD, precision and recall, accuracy on features), `scores` (the protocols of
`zoo eval`), `bench` (speed, `zoo bench`) and `publish` (training, scoring and writing a
catalogue entry's weights and card).

May import: anything below it, `zoo.api` included.
"""
