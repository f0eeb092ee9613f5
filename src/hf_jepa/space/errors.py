"""The errors every tab of the Space turns into a short message for the user."""

from __future__ import annotations

__all__ = ["HubFileUnavailable", "InputError", "ModelUnavailable"]


class InputError(ValueError):
    """An upload or a parameter the app cannot use; the message is shown to the user as it is."""


class ModelUnavailable(RuntimeError):
    """A model folder / Hub id that is missing or does not load; the message says how to make one."""


class HubFileUnavailable(ModelUnavailable):
    """A file of a Hub repo that could not be had now (a network / Hub error after the retries, or offline and not in
    the cache); not remembered: the next request asks again. The message names the repo, the file and the error."""
