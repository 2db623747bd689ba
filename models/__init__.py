"""Model families (installed as `kd_models`). Filled in by models/registry.py."""
