# The config front end (TOML, Hydra overrides, composition, interpolation) with what it uses:
# code without libtorch, listed once for libprefopt and for the fuzz targets (fuzz/), which
# compile it alone with clang's sanitizers.
set(PREFOPT_CONFIG_FRONT_END_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/config/compose.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/interpolate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/node.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/override.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/text.cpp)
