#ifndef NGRAD_CCLBLAST_SHIM_H
#define NGRAD_CCLBLAST_SHIM_H

// The OpenCL 1.2 API, as the library's own COpenCL module uses (clblast_c.h includes
// <CL/opencl.h>).
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <clblast_c.h>

#endif
