#ifndef NGRAD_COPENBLAS_SHIM_H
#define NGRAD_COPENBLAS_SHIM_H

// OpenBLAS's CBLAS header (Debian: libopenblas-dev; pkg-config `openblas` adds its
// directory to the include path).
#include <cblas.h>

#endif
