"""The judges: zoo's own digit classifier and the metrics computed in its features.

Owns: `classifier` (the small classifier, shipped beside it and sha256-checked, whose
features stand in for Inception's on digits) and `metrics` (FLD, KID, precision and recall,
density and coverage, accuracy). They judge images, whoever made them: nothing here knows how
samples are drawn, so the API can use them too (inversion's perceptual loss).

May import: `zoo.errors`, `zoo.base`, `zoo.contract`, `zoo.registry`, `zoo.store`,
`zoo.data`.
"""
