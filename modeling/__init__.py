"""Model definitions shipped beside the weights (remote code). Imports only torch and transformers."""
