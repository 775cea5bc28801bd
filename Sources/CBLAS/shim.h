#ifndef NGRAD_CBLAS_SHIM_H
#define NGRAD_CBLAS_SHIM_H

// OpenBLAS's CBLAS (Debian: libopenblas-dev; pkg-config `openblas` adds its directory to the
// include path): the batched matrix products of the examples' MLP (`ngrad train`) and the
// library's host float64 GEMMs (EKFAC's eigenvalue correction).
#include <cblas.h>

#endif
