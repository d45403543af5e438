"""The classroom: exercises on the lecture's ops and the checker that marks them (``scratchvae check``)."""
