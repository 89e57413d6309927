// A well-formed shared library that is not a prefopt plugin: no prefopt_plugin_entry.
extern "C" __attribute__((visibility("default"))) int some_other_library_function() { return 42; }
