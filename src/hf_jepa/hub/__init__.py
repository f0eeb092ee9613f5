"""Hub publishing: model cards generated from a saved folder, validation of the remote code, and uploads.

A folder written by ``save_pretrained`` for one of our models holds ``config.json`` (with ``auto_map``), the weights
and the modeling files (``configuration_*.py``, ``modeling_*.py`` and their relative imports), so it loads with
``AutoModel.from_pretrained(repo_id)`` where ``hf_jepa`` is imported and with ``trust_remote_code=True`` where it is
not. This package adds the model card and pushes the folder as it is::

    from hf_jepa.hub import write_model_card, upload_folder_to_hub
    write_model_card("outputs/demo/world_model", metrics={"planning_success_rate": 0.8}, training={"steps": 2000})
    upload_folder_to_hub("outputs/demo/world_model", "easy-jepa/vjepa2-ac", dry_run=True)   # lists the files
    upload_folder_to_hub("outputs/demo/world_model", "easy-jepa/vjepa2-ac")                 # one commit

Uploads go through ``HfApi.create_repo`` + ``HfApi.upload_folder`` (one commit): transformers' ``push_to_hub``
would write its own README.md over the card.

Modules: :mod:`.folder` (what a saved folder of ours holds: families, config, weights, remote code),
:mod:`.card` (the model card), :mod:`.upload` (the push).
"""

from .card import CARD_METADATA_KEY, build_model_card, count_parameters, read_card_metadata, write_model_card
from .folder import FAMILIES, Family, HubFolderError, check_model_folder, remote_code_files
from .upload import DEFAULT_IGNORE_PATTERNS, UploadFile, list_upload_files, upload_folder_to_hub

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "CARD_METADATA_KEY",
    "FAMILIES",
    "Family",
    "HubFolderError",
    "UploadFile",
    "build_model_card",
    "check_model_folder",
    "count_parameters",
    "list_upload_files",
    "read_card_metadata",
    "remote_code_files",
    "upload_folder_to_hub",
    "write_model_card",
]
