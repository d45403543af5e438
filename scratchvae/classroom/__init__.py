"""The classroom: handouts cut from the lecture, isolated marking, and a museum of classic bugs.

``scratchvae classroom handout|mark|tasks`` for the teacher (:mod:`.commands`),
``scratchvae check`` for the student (:mod:`.check`). Guide: docs/exercises.md
"""
