/*
 * csra_trt.h: the C ABI between csra-trt (Rust) and its TensorRT shim, libcsra_trt.so.
 *
 * Plain C, no TensorRT or CUDA types: the Rust side mirrors every struct here with #[repr(C)]
 * and checks csra_trt_abi_version() and csra_trt_struct_size() before any other call. Every call
 * that can fail returns a csra_trt_status and writes a NUL-terminated message into the caller's
 * `err` buffer; no C++ exception ever crosses this boundary.
 *
 * Bump CSRA_TRT_ABI_VERSION whenever a signature or struct below changes.
 */
#ifndef CSRA_TRT_H
#define CSRA_TRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CSRA_TRT_ABI_VERSION 1u

/* The library is built with -fvisibility=hidden: only these functions are exported. */
#if defined(__GNUC__)
#define CSRA_TRT_API __attribute__((visibility("default")))
#else
#define CSRA_TRT_API
#endif

/* Lengths of the fixed name buffers below, NUL included. */
#define CSRA_TRT_NAME_LEN 256
#define CSRA_TRT_MAX_DIMS 8

/* What went wrong; 0 is success. */
typedef enum csra_trt_status {
    CSRA_TRT_OK = 0,
    /* The CUDA runtime cannot start: no driver, or no GPU. */
    CSRA_TRT_NO_CUDA = 1,
    /* The loaded libnvinfer is not the version the shim was compiled for. */
    CSRA_TRT_VERSION_MISMATCH = 2,
    /* The ONNX parser rejected the model; the message holds every parser error, one a line. */
    CSRA_TRT_PARSE = 3,
    /* TensorRT could not build an engine. */
    CSRA_TRT_BUILD = 4,
    /* The device cannot do what was asked (fast FP16, INT8, the DLA core). */
    CSRA_TRT_UNSUPPORTED = 5,
    /* The serialized engine cannot be deserialized here. */
    CSRA_TRT_DESERIALIZE = 6,
    /* Inference failed. */
    CSRA_TRT_RUN = 7,
    /* A caller error: a null pointer, a wrong length, an unknown tensor. */
    CSRA_TRT_INVALID_ARGUMENT = 8,
    /* A cache file (timing, calibration) cannot be read or written. */
    CSRA_TRT_IO = 9,
    /* Anything else, including a C++ exception caught at the boundary. */
    CSRA_TRT_INTERNAL = 10
} csra_trt_status;

/* The engine's number format. */
typedef enum csra_trt_precision {
    CSRA_TRT_FP32 = 0,
    CSRA_TRT_FP16 = 1,
    CSRA_TRT_INT8 = 2
} csra_trt_precision;

/* Which struct csra_trt_struct_size() measures. */
typedef enum csra_trt_struct {
    CSRA_TRT_STRUCT_VERSIONS = 0,
    CSRA_TRT_STRUCT_DEVICE = 1,
    CSRA_TRT_STRUCT_BUILD_OPTIONS = 2,
    CSRA_TRT_STRUCT_TENSOR = 3
} csra_trt_struct;

/* Library versions. TensorRT's as major*10000 + minor*100 + patch (the pre-10 encoding,
 * major*1000 + minor*100 + patch, is converted); the ONNX parser's as getNvOnnxParserVersion()
 * returns it; CUDA's as CUDA encodes them (major*1000 + minor*10). */
typedef struct csra_trt_versions {
    int32_t tensorrt_compiled;
    int32_t tensorrt_loaded;
    int32_t onnx_parser;
    int32_t cuda_runtime;
    int32_t cuda_driver;
} csra_trt_versions;

/* One CUDA device as TensorRT sees it. */
typedef struct csra_trt_device {
    char name[CSRA_TRT_NAME_LEN];
    int32_t compute_major;
    int32_t compute_minor;
    /* 1 when the GPU shares memory with the CPU (Jetson). */
    int32_t integrated;
    /* 1 when pinned host memory can be mapped into the device's address space. */
    int32_t can_map_host_memory;
    int32_t fast_fp16;
    int32_t fast_int8;
    int32_t dla_cores;
    uint64_t total_memory;
} csra_trt_device;

/* Called from the build thread: a TensorRT build phase started (step < 0) or advanced. */
typedef void (*csra_trt_progress_fn)(void* user, const char* phase, int32_t step, int32_t steps);

/* How to build an engine. Paths are NUL-terminated UTF-8 or NULL for "none". */
typedef struct csra_trt_build_options {
    int32_t device;
    int32_t precision; /* csra_trt_precision */
    /* -1 for the GPU, else the DLA core (with GPU fallback for layers DLA cannot run). */
    int32_t dla_core;
    uint64_t workspace_bytes;
    /* Read before and written after the build; created when missing. */
    const char* timing_cache_path;
    /* The optimisation profile of a dynamic batch dimension (ignored for a static one). */
    int32_t min_batch;
    int32_t opt_batch;
    int32_t max_batch;
    /* INT8: calibration_len floats, preprocessed inputs one after the other, each the volume of
     * the network input without its batch dimension (the length must be a multiple of it); fed a
     * batch at a time (the input's static batch, or opt_batch when it is dynamic), a last partial
     * batch left out. NULL with a calibration cache only. */
    const float* calibration_data;
    uint64_t calibration_len;
    /* INT8: written after calibrating from calibration_data; read (and no picture run) only
     * when calibration_data is NULL, so new pictures never meet a stale cache. */
    const char* calibration_cache_path;
    csra_trt_progress_fn progress;
    void* progress_user;
} csra_trt_build_options;

/* One input or output tensor of a loaded engine, with the shape its buffers were sized for. */
typedef struct csra_trt_tensor {
    char name[CSRA_TRT_NAME_LEN];
    int32_t is_input;
    int32_t nb_dims;
    int64_t dims[CSRA_TRT_MAX_DIMS];
} csra_trt_tensor;

/* An engine with its execution context, stream, events and buffers. */
typedef struct csra_trt_engine csra_trt_engine;

/* CSRA_TRT_ABI_VERSION as the library was compiled. */
CSRA_TRT_API uint32_t csra_trt_abi_version(void);
/* sizeof the struct `which` (a csra_trt_struct) as the library was compiled, 0 if unknown. */
CSRA_TRT_API size_t csra_trt_struct_size(int32_t which);

/* Checks the loaded TensorRT against the compiled headers and starts the CUDA runtime. */
CSRA_TRT_API csra_trt_status csra_trt_init(csra_trt_versions* out, char* err, size_t err_len);
/* Describes CUDA device `device`. */
CSRA_TRT_API csra_trt_status csra_trt_device_info(int32_t device, csra_trt_device* out, char* err, size_t err_len);

/* Builds a serialized engine from ONNX bytes; free *plan with csra_trt_free_plan. */
CSRA_TRT_API csra_trt_status csra_trt_build(const csra_trt_build_options* options, const uint8_t* onnx,
                               size_t onnx_len, uint8_t** plan, size_t* plan_len, char* err,
                               size_t err_len);
/* Frees a plan from csra_trt_build. */
CSRA_TRT_API void csra_trt_free_plan(uint8_t* plan);

/* Deserializes a plan on `device` (and DLA core `dla_core`, -1 for none), its buffers sized for
 * `batch` where the batch dimension is dynamic. */
CSRA_TRT_API csra_trt_status csra_trt_engine_load(int32_t device, int32_t dla_core, const uint8_t* plan,
                                     size_t plan_len, int32_t batch, csra_trt_engine** out,
                                     char* err, size_t err_len);
/* The number of I/O tensors. */
CSRA_TRT_API int32_t csra_trt_engine_tensor_count(const csra_trt_engine* engine);
/* Describes I/O tensor `index`. */
CSRA_TRT_API csra_trt_status csra_trt_engine_tensor(const csra_trt_engine* engine, int32_t index,
                                       csra_trt_tensor* out, char* err, size_t err_len);
/* Copies `len` floats into input tensor `index`'s host buffer. */
CSRA_TRT_API csra_trt_status csra_trt_engine_set_input(csra_trt_engine* engine, int32_t index,
                                          const float* data, size_t len, char* err,
                                          size_t err_len);
/* Runs the network once (enqueueV3 on the engine's stream) and waits; *network_ms is the time
 * between CUDA events around the copies and the network. */
CSRA_TRT_API csra_trt_status csra_trt_engine_run(csra_trt_engine* engine, float* network_ms, char* err,
                                    size_t err_len);
/* Copies `len` floats out of output tensor `index`'s host buffer. */
CSRA_TRT_API csra_trt_status csra_trt_engine_get_output(const csra_trt_engine* engine, int32_t index,
                                           float* data, size_t len, char* err, size_t err_len);
/* Frees an engine and everything it holds. */
CSRA_TRT_API void csra_trt_engine_free(csra_trt_engine* engine);

#ifdef __cplusplus
}
#endif

#endif /* CSRA_TRT_H */
