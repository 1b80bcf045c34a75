"""Measuring models: their scores, their speed, and publishing scored weights.

Owns: `scores` (the protocols of `zoo eval`, in the judges' features: `zoo.judge`), `bench`
(speed, `zoo bench`) and `limits` (the machine's measured roofs it is read against),
`quantized` (`zoo export --int8`, kept only if it scores like float32) and `publish`
(training, scoring and writing a catalogue entry's weights and card).

May import: anything below it, `zoo.api` included.
"""
