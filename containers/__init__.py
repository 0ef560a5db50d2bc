"""Dockerfiles and the registry-free image builder for containerized tools."""

from containers.builder import BaseSpec, BuildError, ImageBuilder, ImageSpec, code_interpreter_spec

__all__ = ["BaseSpec", "BuildError", "ImageBuilder", "ImageSpec", "code_interpreter_spec"]
