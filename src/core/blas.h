// The one place that names the BLAS (CMake's ANETRAIN_BLAS, target anetrain_blas): Accelerate on
// Apple, whose sgemm runs on the M-series matrix coprocessor, or OpenBLAS built for OpenMP.
#pragma once
#if defined(ANETRAIN_BLAS_ACCELERATE)
#include <Accelerate/Accelerate.h>
#define ANETRAIN_BLAS_NAME "accelerate"
#else
#include <cblas.h>
#define ANETRAIN_BLAS_NAME "openblas"
#endif
