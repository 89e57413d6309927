# The SDK release whose ABI every later minor version of the same major keeps. Written, with
# sdk-<API>.abi.xz beside it, by scripts/abi-baseline.sh when a major version is released.
#   API        the release's SDK API version
#   COMMIT     the commit it was released from: its public headers build the older-minor test plugin
#   TOOLCHAIN  compiler and libtorch the ABI description was made with (only that build checks it)
set(PREFOPT_ABI_BASELINE_API 3.0)
set(PREFOPT_ABI_BASELINE_COMMIT 1c9924161a0bd35d18e29e24e633722504b7cd6b)
set(PREFOPT_ABI_BASELINE_TOOLCHAIN "GNU-12 libtorch-1.13.0")
