/*
 * A stand-in for libcsra_trt.so, for tests only (never shipped): it implements the shim's C ABI
 * (shim/csra_trt.h) without TensorRT or a GPU, so the Rust side can be driven end to end.
 *
 * Its "network" takes one input [1, 3, 4, 4] and has two outputs [1, 5]:
 *   logits[i] = (i + 1) * sum(input),   probs[i] = logits[i] / (1 + |logits[i]|)
 * and its n-th run reports a network time of 0.5 * n ms. Its "plan" is a magic header, the
 * precision and the ONNX size; anything else fails to deserialize.
 *
 * Compile with -DSTANDIN_ABI=N to pose as another ABI version, -DSTANDIN_NO_GPU as a machine
 * whose CUDA runtime finds no GPU.
 */
#include "csra_trt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef STANDIN_ABI
#define STANDIN_ABI CSRA_TRT_ABI_VERSION
#endif

#define MAGIC "STANDIN-PLAN-v1\n"
#define INPUT_LEN 48
#define CLASSES 5

struct csra_trt_engine {
    float input[INPUT_LEN];
    float logits[CLASSES];
    float probs[CLASSES];
    int runs;
};

static csra_trt_status fail(char* err, size_t err_len, csra_trt_status s, const char* msg) {
    if (err != NULL && err_len > 0) {
        snprintf(err, err_len, "%s", msg);
    }
    return s;
}

static int write_text(const char* path, const char* text) {
    FILE* f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    fputs(text, f);
    return fclose(f) == 0;
}

uint32_t csra_trt_abi_version(void) { return STANDIN_ABI; }

size_t csra_trt_struct_size(int32_t which) {
    switch (which) {
    case CSRA_TRT_STRUCT_VERSIONS: return sizeof(csra_trt_versions);
    case CSRA_TRT_STRUCT_DEVICE: return sizeof(csra_trt_device);
    case CSRA_TRT_STRUCT_BUILD_OPTIONS: return sizeof(csra_trt_build_options);
    case CSRA_TRT_STRUCT_TENSOR: return sizeof(csra_trt_tensor);
    default: return 0;
    }
}

csra_trt_status csra_trt_init(csra_trt_versions* out, char* err, size_t err_len) {
    if (out == NULL) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "null versions");
    }
#ifdef STANDIN_NO_GPU
    return fail(err, err_len, CSRA_TRT_NO_CUDA,
                "the CUDA runtime cannot start: cudaErrorNoDevice (no CUDA-capable device is "
                "detected)");
#endif
    out->tensorrt_compiled = 100300;
    out->tensorrt_loaded = 100300;
    out->onnx_parser = 100300;
    out->cuda_runtime = 12060;
    out->cuda_driver = 12060;
    return CSRA_TRT_OK;
}

csra_trt_status csra_trt_device_info(int32_t device, csra_trt_device* out, char* err,
                                     size_t err_len) {
    if (device != 0) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "there is no CUDA device 1");
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "Stand-in Orin");
    out->compute_major = 8;
    out->compute_minor = 7;
    out->integrated = 1;
    out->can_map_host_memory = 1;
    out->fast_fp16 = 1;
    out->fast_int8 = 1;
    out->dla_cores = 2;
    out->total_memory = 1u << 30;
    return CSRA_TRT_OK;
}

csra_trt_status csra_trt_build(const csra_trt_build_options* o, const uint8_t* onnx,
                               size_t onnx_len, uint8_t** plan, size_t* plan_len, char* err,
                               size_t err_len) {
    (void)onnx;
    if (o == NULL || plan == NULL || plan_len == NULL) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "null argument");
    }
    if (onnx_len == 0) {
        return fail(err, err_len, CSRA_TRT_PARSE, "node 0: empty model");
    }
    if (o->progress != NULL) {
        o->progress(o->progress_user, "Building engine", -1, 2);
        o->progress(o->progress_user, "Building engine", 0, 0);
        o->progress(o->progress_user, "Building engine", 1, 0);
    }
    if (o->timing_cache_path != NULL && !write_text(o->timing_cache_path, "stand-in timings")) {
        return fail(err, err_len, CSRA_TRT_IO, "cannot write the timing cache");
    }
    if (o->precision == CSRA_TRT_INT8 && o->calibration_cache_path != NULL) {
        char text[64];
        snprintf(text, sizeof(text), "calibrated on %llu values",
                 (unsigned long long)o->calibration_len);
        if (!write_text(o->calibration_cache_path, text)) {
            return fail(err, err_len, CSRA_TRT_IO, "cannot write the calibration cache");
        }
    }
    char text[128];
    int n = snprintf(text, sizeof(text), MAGIC "precision %d dla %d onnx %zu\n", o->precision,
                     o->dla_core, onnx_len);
    *plan = (uint8_t*)malloc((size_t)n);
    if (*plan == NULL) {
        return fail(err, err_len, CSRA_TRT_INTERNAL, "out of memory");
    }
    memcpy(*plan, text, (size_t)n);
    *plan_len = (size_t)n;
    return CSRA_TRT_OK;
}

void csra_trt_free_plan(uint8_t* plan) { free(plan); }

csra_trt_status csra_trt_engine_load(int32_t device, int32_t dla_core, const uint8_t* plan,
                                     size_t plan_len, int32_t batch, csra_trt_engine** out,
                                     char* err, size_t err_len) {
    (void)device;
    (void)dla_core;
    (void)batch;
    if (plan_len < strlen(MAGIC) || memcmp(plan, MAGIC, strlen(MAGIC)) != 0) {
        return fail(err, err_len, CSRA_TRT_DESERIALIZE,
                    "Serialization assertion magicTagRead == kMAGIC_TAG failed");
    }
    *out = (csra_trt_engine*)calloc(1, sizeof(csra_trt_engine));
    return *out == NULL ? fail(err, err_len, CSRA_TRT_INTERNAL, "out of memory") : CSRA_TRT_OK;
}

int32_t csra_trt_engine_tensor_count(const csra_trt_engine* engine) {
    return engine == NULL ? 0 : 3;
}

csra_trt_status csra_trt_engine_tensor(const csra_trt_engine* engine, int32_t index,
                                       csra_trt_tensor* out, char* err, size_t err_len) {
    static const char* names[3] = {"input", "logits", "probs"};
    if (engine == NULL || index < 0 || index > 2) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "no such tensor");
    }
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", names[index]);
    out->is_input = index == 0;
    if (index == 0) {
        out->nb_dims = 4;
        out->dims[0] = 1;
        out->dims[1] = 3;
        out->dims[2] = 4;
        out->dims[3] = 4;
    } else {
        out->nb_dims = 2;
        out->dims[0] = 1;
        out->dims[1] = CLASSES;
    }
    return CSRA_TRT_OK;
}

csra_trt_status csra_trt_engine_set_input(csra_trt_engine* engine, int32_t index,
                                          const float* data, size_t len, char* err,
                                          size_t err_len) {
    if (engine == NULL || index != 0 || len != INPUT_LEN) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "input takes 48 values");
    }
    memcpy(engine->input, data, sizeof(engine->input));
    return CSRA_TRT_OK;
}

csra_trt_status csra_trt_engine_run(csra_trt_engine* engine, float* network_ms, char* err,
                                    size_t err_len) {
    if (engine == NULL) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "null engine");
    }
    double sum = 0.0;
    for (int i = 0; i < INPUT_LEN; ++i) {
        sum += engine->input[i];
    }
    for (int i = 0; i < CLASSES; ++i) {
        engine->logits[i] = (float)((i + 1) * sum);
        engine->probs[i] = (float)(engine->logits[i] / (1.0 + fabs(engine->logits[i])));
    }
    engine->runs += 1;
    *network_ms = 0.5f * (float)engine->runs;
    return CSRA_TRT_OK;
}

csra_trt_status csra_trt_engine_get_output(const csra_trt_engine* engine, int32_t index,
                                           float* data, size_t len, char* err, size_t err_len) {
    if (engine == NULL || (index != 1 && index != 2) || len != CLASSES) {
        return fail(err, err_len, CSRA_TRT_INVALID_ARGUMENT, "outputs hold 5 values");
    }
    memcpy(data, index == 1 ? engine->logits : engine->probs, sizeof(engine->logits));
    return CSRA_TRT_OK;
}

void csra_trt_engine_free(csra_trt_engine* engine) { free(engine); }
