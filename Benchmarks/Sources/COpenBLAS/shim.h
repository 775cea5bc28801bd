#ifndef NGRAD_COPENBLAS_SHIM_H
#define NGRAD_COPENBLAS_SHIM_H

// OpenBLAS's CBLAS header (Debian: libopenblas-dev; pkg-config `openblas` adds its
// directory to the include path).
#include <cblas.h>

// LAPACK's C interface (Debian: liblapacke-dev, /usr/include/lapacke.h) for the Woodbury
// baseline's float64 Cholesky. Debian's liblapacke calls liblapack.so.3, which the
// alternatives system points at OpenBLAS's LAPACK once libopenblas0-pthread is installed
// (the library's own DenseSymmetricFactorization goes through the same path).
#include <lapacke.h>

#endif
