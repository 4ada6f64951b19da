// CUDA error handling for bindings: every runtime call is checked and turned into a Python
// RuntimeError naming the call, so a failed launch is never silent.
#pragma once
#include <cuda_runtime.h>
#include <stdexcept>
#include <string>

#define HPC_CUDA_CHECK(call)                                                              \
  do {                                                                                    \
    cudaError_t hpc_err_ = (call);                                                        \
    if (hpc_err_ != cudaSuccess)                                                          \
      throw std::runtime_error(std::string(#call) + ": " + cudaGetErrorString(hpc_err_)); \
  } while (0)
