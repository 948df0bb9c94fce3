"""Exercise tests, one module per lesson; each module registers its exercises with `exercise`.

No module here holds an answer: the tests judge behaviour, and the answers live
in the answer notebooks and the unit tests.
"""
