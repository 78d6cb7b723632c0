"""Claims layer: each claim of DESIGN.md's catalogue as a function that *measures* —
a fitted order, a leading-coefficient ratio, an agreement to rounding — and returns
:class:`~cmverify.results.Check` objects carrying the measurement, the prediction, the
error budget and the verdict.

Modules: :mod:`.local` (EULER-LOCAL, SWAP-LOCAL, CT-LOCAL), :mod:`.induction`
(CT-GLOBAL, CT-GAUSS, SONG-T1), :mod:`.losses` (SONG-T2), :mod:`.sampling`
(MULTISTEP), :mod:`.velocity` (FLOW-VELOCITY's probability-flow form),
:mod:`.functions` (the smooth test functions ``F``).
"""
