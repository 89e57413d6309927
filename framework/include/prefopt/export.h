// PREFOPT_API marks what crosses a library boundary (everything is built with hidden visibility).
// Its own header, without libtorch, so code that does not compute (the config front end, the
// fuzz targets) can include the declarations it needs.
#pragma once

#define PREFOPT_API __attribute__((visibility("default")))
