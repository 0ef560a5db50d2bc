"""Dockerfiles and the image builder for containerized tools.

Nothing here yet: the code-interpreter image and its registry-free builder arrive with the
containerized-tools work. The package exists so the top-level layout is fixed from the start.
"""
