// Owner of the precompiled LibTorch header that every prefopt target reuses (REUSE_FROM).
