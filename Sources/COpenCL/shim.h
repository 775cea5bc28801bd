#ifndef NGRAD_COPENCL_SHIM_H
#define NGRAD_COPENCL_SHIM_H

// Target the OpenCL 1.2 API so that every vendor's driver and PoCL can load us
// through the ICD loader; clCreateCommandQueue is deprecated from 2.0 on.
#define CL_TARGET_OPENCL_VERSION 120
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>

#endif
