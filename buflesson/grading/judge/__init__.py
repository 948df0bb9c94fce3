"""The judge: the `buflesson grade` process. It holds the course (the reference of each lesson),
the hidden checks and the output folder, runs every check and decides every verdict, and never
executes a line a student wrote: student code runs in the children (`buflesson.grading.child`),
which answer the judge's requests with plain data.

`run` (one `grade` call: what to grade, what is already graded), `setup` (the course, hidden checks
and points; misuse), `outputs` (stored results, feedback, gradebook.csv), `scheduler` (workers,
re-runs after a death), `journal` (which notebook killed a grader), `children` (the zygote and its
children), `scratch` (folders), `conversation` (one notebook: its cells and checks), `verdict`
(points and the row's reason).
"""
