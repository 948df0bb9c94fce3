"""The child side of the grader: the processes that run a student's notebook.

Nothing here holds what a student could use: no answer, no hidden check, no output or course path.
`zygote` is the process the judge starts (scrubbed environment and arguments); it imports torch,
IPython and buflesson's public modules once (`warmup`) and forks one sandboxed child per notebook
(`sandbox`, `rootfs`, `linux`). The child runs the cells the judge sends (`runner`, `alarm`) and,
when a check cell asks for its check, answers the judge's requests about the answer with plain data
(`serve`). Scores are never decided here: the judge (`buflesson.grading.judge`) compares what it
receives with what it computes itself.
"""
