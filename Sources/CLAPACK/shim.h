#ifndef NGRAD_CLAPACK_SHIM_H
#define NGRAD_CLAPACK_SHIM_H

// LAPACKE (Debian's liblapacke-dev, backed by OpenBLAS's LAPACK): the float64 dense
// factorisations the solvers run on the host.
#include <lapacke.h>

#endif
