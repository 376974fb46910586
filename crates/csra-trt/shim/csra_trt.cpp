// csra_trt.cpp: the TensorRT shim behind csra_trt.h, built as libcsra_trt.so.
//
// Everything TensorRT- or CUDA-version specific lives here, behind NV_TENSORRT_MAJOR/MINOR;
// the Rust side sees only the C ABI. Every exported function catches every exception: none may
// unwind into Rust.
//
// Supported: TensorRT 8.5 (JetPack 5.1), 8.6 (JetPack 6.0) and 10.x (JetPack 6.1/6.2).

#include "csra_trt.h"

#include <NvInfer.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#if NV_TENSORRT_MAJOR < 8 || (NV_TENSORRT_MAJOR == 8 && NV_TENSORRT_MINOR < 5)
#error "csra-trt needs TensorRT 8.5 or newer (enqueueV3, named I/O tensors)"
#endif
#if NV_TENSORRT_MAJOR >= 11
#error "TensorRT 11 removed the FP16/INT8 builder flags and the INT8 calibrator csra-trt uses"
#endif

// TensorRT 10 deprecates the INT8 calibrator (10.1) and the kFP16/kINT8 builder flags (10.12) in
// favour of explicitly quantised, strongly typed networks. csra exports are plain FP32 graphs, so
// implicit precision is the only way to get FP16/INT8 engines from them; the calls stay, with the
// deprecation warnings silenced only around them.
#define CSRA_TRT_ALLOW_DEPRECATED_BEGIN \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define CSRA_TRT_ALLOW_DEPRECATED_END _Pragma("GCC diagnostic pop")

namespace {

using nvinfer1::ILogger;

// TensorRT's own version encoding changed at 10: major*1000+minor*100+patch before, then
// major*10000+minor*100+patch. Values below 10000 are the old encoding.
int32_t normalise_trt_version(int32_t v) {
    if (v < 10000) {
        return (v / 1000) * 10000 + ((v / 100) % 10) * 100 + v % 100;
    }
    return v;
}

constexpr int32_t kCompiledVersion =
    NV_TENSORRT_MAJOR * 10000 + NV_TENSORRT_MINOR * 100 + NV_TENSORRT_PATCH;

void write_err(char* err, size_t err_len, const std::string& msg) {
    if (err == nullptr || err_len == 0) {
        return;
    }
    const size_t n = std::min(msg.size(), err_len - 1);
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
}

// Collects TensorRT's error messages during one call, so a failure reports TensorRT's reason.
class Logger final : public ILogger {
public:
    void log(Severity severity, const char* msg) noexcept override {
        if (severity > Severity::kERROR || msg == nullptr) {
            return;
        }
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!errors_.empty()) {
                errors_ += "\n";
            }
            errors_ += msg;
        } catch (...) {
            // Out of memory while logging: the message is lost, the call's status still says why.
        }
    }
    std::string take() {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string out;
        out.swap(errors_);
        return out;
    }

private:
    std::mutex mutex_;
    std::string errors_;
};

// A failure with its status, thrown inside the shim only and turned into a status at the boundary.
struct Failure {
    csra_trt_status status;
    std::string message;
};

[[noreturn]] void fail(csra_trt_status status, std::string message) {
    throw Failure{status, std::move(message)};
}

std::string with_log(std::string message, Logger& logger) {
    const std::string logged = logger.take();
    if (!logged.empty()) {
        message += ": " + logged;
    }
    return message;
}

void cuda_check(cudaError_t rc, const char* what, csra_trt_status status = CSRA_TRT_RUN) {
    if (rc != cudaSuccess) {
        fail(status, std::string(what) + ": " + cudaGetErrorName(rc) + " (" +
                         cudaGetErrorString(rc) + ")");
    }
}

// Runs `body`, turning every exception into a status and a message.
template <typename F>
csra_trt_status guard(char* err, size_t err_len, F&& body) noexcept {
    try {
        body();
        return CSRA_TRT_OK;
    } catch (const Failure& f) {
        write_err(err, err_len, f.message);
        return f.status;
    } catch (const std::bad_alloc&) {
        write_err(err, err_len, "out of host memory");
        return CSRA_TRT_INTERNAL;
    } catch (const std::exception& e) {
        write_err(err, err_len, std::string("internal error: ") + e.what());
        return CSRA_TRT_INTERNAL;
    } catch (...) {
        write_err(err, err_len, "internal error: unknown exception");
        return CSRA_TRT_INTERNAL;
    }
}

void set_device(int32_t device) {
    int count = 0;
    const cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        fail(CSRA_TRT_NO_CUDA, std::string("the CUDA runtime cannot start: ") +
                                   cudaGetErrorName(rc) + " (" + cudaGetErrorString(rc) + ")");
    }
    if (count == 0) {
        fail(CSRA_TRT_NO_CUDA, "the CUDA runtime sees no GPU");
    }
    if (device < 0 || device >= count) {
        fail(CSRA_TRT_INVALID_ARGUMENT, "there is no CUDA device " + std::to_string(device) +
                                            " (the machine has " + std::to_string(count) + ")");
    }
    cuda_check(cudaSetDevice(device), "cudaSetDevice", CSRA_TRT_NO_CUDA);
}

bool read_file(const char* path, std::vector<char>& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return false;
    }
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

// Writes through a temporary file in the same directory and a rename, so a reader never sees
// half a cache file.
void write_file_atomic(const char* path, const void* data, size_t len) {
    const std::string tmp = std::string(path) + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) {
            fail(CSRA_TRT_IO, std::string("cannot write ") + tmp);
        }
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(len));
        if (!out) {
            fail(CSRA_TRT_IO, std::string("cannot write ") + tmp);
        }
    }
    if (std::rename(tmp.c_str(), path) != 0) {
        std::remove(tmp.c_str());
        fail(CSRA_TRT_IO, std::string("cannot rename ") + tmp + " to " + path);
    }
}

template <typename D>
int64_t volume(const D& dims, int32_t from) {
    int64_t v = 1;
    for (int32_t i = from; i < dims.nbDims; ++i) {
        v *= static_cast<int64_t>(dims.d[i]);
    }
    return v;
}

template <typename D>
std::string dims_text(const D& dims) {
    std::string s = "[";
    for (int32_t i = 0; i < dims.nbDims; ++i) {
        s += (i ? ", " : "") + std::to_string(static_cast<int64_t>(dims.d[i]));
    }
    return s + "]";
}

struct DeviceBuffer {
    void* ptr = nullptr;
    ~DeviceBuffer() {
        if (ptr != nullptr) {
            cudaFree(ptr);
        }
    }
};

// INT8 entropy calibration over host tensors the Rust side preprocessed, with a cache file.
CSRA_TRT_ALLOW_DEPRECATED_BEGIN
class Calibrator final : public nvinfer1::IInt8EntropyCalibrator2 {
public:
    Calibrator(const float* data, uint64_t samples, int64_t sample_len, int64_t batch,
               const char* input_name, const char* cache_path)
        : data_(data), samples_(samples), sample_len_(sample_len), batch_(batch),
          input_name_(input_name), cache_path_(cache_path ? cache_path : "") {
        if (data_ != nullptr && samples_ >= static_cast<uint64_t>(batch_)) {
            cuda_check(cudaMalloc(&device_.ptr, static_cast<size_t>(batch_ * sample_len_) *
                                                    sizeof(float)),
                       "cudaMalloc (calibration batch)", CSRA_TRT_BUILD);
        }
    }
    // Explicit-batch networks carry the batch in the input shape; TensorRT wants 1 here.
    int32_t getBatchSize() const noexcept override { return 1; }
    bool getBatch(void* bindings[], const char* names[], int32_t nb) noexcept override {
        if (device_.ptr == nullptr || next_ + static_cast<uint64_t>(batch_) > samples_) {
            return false;
        }
        for (int32_t i = 0; i < nb; ++i) {
            if (std::strcmp(names[i], input_name_.c_str()) != 0) {
                return false;
            }
        }
        const float* src = data_ + next_ * static_cast<uint64_t>(sample_len_);
        const size_t bytes = static_cast<size_t>(batch_ * sample_len_) * sizeof(float);
        if (cudaMemcpy(device_.ptr, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
            return false;
        }
        bindings[0] = device_.ptr;
        next_ += static_cast<uint64_t>(batch_);
        return true;
    }
    const void* readCalibrationCache(size_t& length) noexcept override {
        length = 0;
        // Pictures given: calibrate on them, so a cache from other pictures is never reused.
        if (cache_path_.empty() || data_ != nullptr) {
            return nullptr;
        }
        try {
            if (!read_file(cache_path_.c_str(), cache_) || cache_.empty()) {
                return nullptr;
            }
        } catch (...) {
            return nullptr;
        }
        length = cache_.size();
        return cache_.data();
    }
    void writeCalibrationCache(const void* ptr, size_t length) noexcept override {
        if (cache_path_.empty()) {
            return;
        }
        try {
            write_file_atomic(cache_path_.c_str(), ptr, length);
        } catch (const Failure& f) {
            write_error_ = f.message;
        } catch (...) {
            write_error_ = "cannot write the calibration cache " + cache_path_;
        }
    }
    const std::string& write_error() const { return write_error_; }

private:
    const float* data_;
    uint64_t samples_;
    int64_t sample_len_;
    int64_t batch_;
    uint64_t next_ = 0;
    std::string input_name_;
    std::string cache_path_;
    std::vector<char> cache_;
    std::string write_error_;
    DeviceBuffer device_;
};
CSRA_TRT_ALLOW_DEPRECATED_END

#if NV_TENSORRT_MAJOR >= 10
// TensorRT 10's build progress, passed on to the Rust side's callback.
class Progress final : public nvinfer1::IProgressMonitor {
public:
    Progress(csra_trt_progress_fn fn, void* user) : fn_(fn), user_(user) {}
    void phaseStart(const char* phase, const char*, int32_t steps) noexcept override {
        fn_(user_, phase, -1, steps);
    }
    bool stepComplete(const char* phase, int32_t step) noexcept override {
        fn_(user_, phase, step, 0);
        return true;
    }
    void phaseFinish(const char*) noexcept override {}

private:
    csra_trt_progress_fn fn_;
    void* user_;
};
#endif

template <typename T>
using Owned = std::unique_ptr<T>;

void build_impl(const csra_trt_build_options& o, const uint8_t* onnx, size_t onnx_len,
                uint8_t** plan, size_t* plan_len) {
    set_device(o.device);
    Logger logger;
    Owned<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
    if (!builder) {
        fail(CSRA_TRT_BUILD, with_log("cannot create a TensorRT builder", logger));
    }
#if NV_TENSORRT_MAJOR >= 10
    const uint32_t flags = 0;  // explicit batch is the only mode from 10 on
#else
    const uint32_t flags =
        1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
#endif
    Owned<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
    Owned<nvonnxparser::IParser> parser(
        network ? nvonnxparser::createParser(*network, logger) : nullptr);
    if (!network || !parser) {
        fail(CSRA_TRT_BUILD, with_log("cannot create a network and its ONNX parser", logger));
    }
    if (!parser->parse(onnx, onnx_len)) {
        std::string text = "the TensorRT ONNX parser rejects the model:";
        for (int32_t i = 0; i < parser->getNbErrors(); ++i) {
            const nvonnxparser::IParserError* e = parser->getError(i);
            text += "\n  node " + std::to_string(e->node());
#if NV_TENSORRT_MAJOR >= 10
            text += std::string(" (") + e->nodeOperator() + " " + e->nodeName() + ")";
#endif
            text += std::string(": ") + e->desc();
        }
        fail(CSRA_TRT_PARSE, with_log(text, logger));
    }

    Owned<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
    if (!config) {
        fail(CSRA_TRT_BUILD, with_log("cannot create a builder config", logger));
    }
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, o.workspace_bytes);

    // The optimisation profile: only the batch dimension may be dynamic.
    nvinfer1::IOptimizationProfile* profile = nullptr;
    for (int32_t i = 0; i < network->getNbInputs(); ++i) {
        nvinfer1::ITensor* input = network->getInput(i);
        const auto dims = input->getDimensions();
        for (int32_t d = 1; d < dims.nbDims; ++d) {
            if (dims.d[d] < 0) {
                fail(CSRA_TRT_INVALID_ARGUMENT,
                     std::string("input ") + input->getName() + " has the shape " +
                         dims_text(dims) + ": only its batch dimension may be dynamic");
            }
        }
        if (dims.nbDims == 0 || dims.d[0] >= 0) {
            continue;
        }
        if (o.min_batch < 1 || o.opt_batch < o.min_batch || o.max_batch < o.opt_batch) {
            fail(CSRA_TRT_INVALID_ARGUMENT,
                 "a dynamic batch needs 1 <= min <= opt <= max batch, got " +
                     std::to_string(o.min_batch) + "/" + std::to_string(o.opt_batch) + "/" +
                     std::to_string(o.max_batch));
        }
        if (profile == nullptr) {
            profile = builder->createOptimizationProfile();
        }
        auto shape = dims;
        shape.d[0] = o.min_batch;
        profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kMIN, shape);
        shape.d[0] = o.opt_batch;
        profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kOPT, shape);
        shape.d[0] = o.max_batch;
        profile->setDimensions(input->getName(), nvinfer1::OptProfileSelector::kMAX, shape);
    }
    if (profile != nullptr && config->addOptimizationProfile(profile) < 0) {
        fail(CSRA_TRT_BUILD, with_log("TensorRT rejects the batch profile", logger));
    }

    const bool fast_fp16 = builder->platformHasFastFp16();
    std::unique_ptr<Calibrator> calibrator;
    CSRA_TRT_ALLOW_DEPRECATED_BEGIN
    switch (o.precision) {
    case CSRA_TRT_FP32:
        // TensorRT enables TF32 (a 10-bit mantissa) for FP32 layers by default on Ampere and
        // later; FP32 here means FP32, so `verify` compares like with like.
        config->clearFlag(nvinfer1::BuilderFlag::kTF32);
        break;
    case CSRA_TRT_FP16:
        if (!fast_fp16) {
            fail(CSRA_TRT_UNSUPPORTED,
                 "this GPU has no fast FP16; build with --precision fp32 (or int8)");
        }
        config->setFlag(nvinfer1::BuilderFlag::kFP16);
        break;
    case CSRA_TRT_INT8: {
        if (!builder->platformHasFastInt8()) {
            fail(CSRA_TRT_UNSUPPORTED, "this GPU has no fast INT8; use --precision fp16 or fp32");
        }
        if (network->getNbInputs() != 1) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "INT8 calibration needs a network with one input");
        }
        config->setFlag(nvinfer1::BuilderFlag::kINT8);
        // Layers without an INT8 kernel fall back to FP16 rather than FP32 where FP16 is fast.
        if (fast_fp16) {
            config->setFlag(nvinfer1::BuilderFlag::kFP16);
        }
        nvinfer1::ITensor* input = network->getInput(0);
        const auto dims = input->getDimensions();
        const int64_t batch = dims.nbDims > 0 && dims.d[0] >= 0 ? dims.d[0] : o.opt_batch;
        const int64_t sample_len = volume(dims, 1);
        if (sample_len <= 0 ||
            o.calibration_len % static_cast<uint64_t>(sample_len) != 0) {
            fail(CSRA_TRT_INVALID_ARGUMENT,
                 "the calibration data holds " + std::to_string(o.calibration_len) +
                     " values, not a multiple of the input's " + std::to_string(sample_len) +
                     " per picture");
        }
        if (o.calibration_data != nullptr &&
            o.calibration_len / static_cast<uint64_t>(sample_len) < static_cast<uint64_t>(batch)) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "INT8 calibration needs at least one batch of " +
                                                std::to_string(batch) + " pictures");
        }
        calibrator.reset(new Calibrator(o.calibration_data,
                                        o.calibration_len / static_cast<uint64_t>(sample_len),
                                        sample_len, batch, input->getName(),
                                        o.calibration_cache_path));
        config->setInt8Calibrator(calibrator.get());
        if (profile != nullptr) {
            config->setCalibrationProfile(profile);
        }
        break;
    }
    default:
        fail(CSRA_TRT_INVALID_ARGUMENT, "unknown precision " + std::to_string(o.precision));
    }
    CSRA_TRT_ALLOW_DEPRECATED_END

    if (o.dla_core >= 0) {
        const int32_t cores = builder->getNbDLACores();
        if (o.dla_core >= cores) {
            fail(CSRA_TRT_UNSUPPORTED,
                 "there is no DLA core " + std::to_string(o.dla_core) + ": this device has " +
                     std::to_string(cores) + (cores == 0 ? "; drop --dla" : "; pass a smaller --dla"));
        }
        if (o.precision == CSRA_TRT_FP32) {
            fail(CSRA_TRT_UNSUPPORTED, "DLA runs FP16 or INT8 only; pass --precision fp16 or int8");
        }
        config->setDefaultDeviceType(nvinfer1::DeviceType::kDLA);
        config->setDLACore(o.dla_core);
        config->setFlag(nvinfer1::BuilderFlag::kGPU_FALLBACK);
    }

    // The timing cache: a missing or unreadable file starts an empty one.
    std::vector<char> timing;
    if (o.timing_cache_path != nullptr) {
        read_file(o.timing_cache_path, timing);
    }
    Owned<nvinfer1::ITimingCache> cache(config->createTimingCache(timing.data(), timing.size()));
    if (!cache && !timing.empty()) {
        logger.take();  // a stale or foreign cache file: start over rather than fail the build
        cache.reset(config->createTimingCache(nullptr, 0));
    }
    if (cache && !config->setTimingCache(*cache, false)) {
        fail(CSRA_TRT_BUILD, with_log("TensorRT rejects the timing cache", logger));
    }

#if NV_TENSORRT_MAJOR >= 10
    std::unique_ptr<Progress> progress;
    if (o.progress != nullptr) {
        progress.reset(new Progress(o.progress, o.progress_user));
        config->setProgressMonitor(progress.get());
    }
#endif

    Owned<nvinfer1::IHostMemory> serialized(builder->buildSerializedNetwork(*network, *config));
    if (!serialized || serialized->size() == 0) {
        fail(CSRA_TRT_BUILD, with_log("TensorRT cannot build an engine", logger));
    }
    if (calibrator && !calibrator->write_error().empty()) {
        fail(CSRA_TRT_IO, calibrator->write_error());
    }
    if (o.timing_cache_path != nullptr) {
        const nvinfer1::ITimingCache* used = config->getTimingCache();
        Owned<nvinfer1::IHostMemory> blob(used ? used->serialize() : nullptr);
        if (blob) {
            write_file_atomic(o.timing_cache_path, blob->data(), blob->size());
        }
    }
    auto* out = static_cast<uint8_t*>(std::malloc(serialized->size()));
    if (out == nullptr) {
        throw std::bad_alloc();
    }
    std::memcpy(out, serialized->data(), serialized->size());
    *plan = out;
    *plan_len = serialized->size();
}

}  // namespace

// One I/O tensor's buffers: pinned host memory, mapped into the GPU on integrated devices.
struct Tensor {
    std::string name;
    bool is_input = false;
    int32_t nb_dims = 0;
    int64_t dims[CSRA_TRT_MAX_DIMS] = {};
    size_t len = 0;
    float* host = nullptr;
    void* device = nullptr;
    bool mapped = false;
};

struct csra_trt_engine {
    int32_t device = 0;
    Logger logger;
    Owned<nvinfer1::IRuntime> runtime;
    Owned<nvinfer1::ICudaEngine> engine;
    Owned<nvinfer1::IExecutionContext> context;
    std::vector<Tensor> tensors;
    cudaStream_t stream = nullptr;
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;

    ~csra_trt_engine() {
        cudaSetDevice(device);
        context.reset();
        engine.reset();
        runtime.reset();
        for (Tensor& t : tensors) {
            if (t.host != nullptr) {
                cudaFreeHost(t.host);
            }
            if (!t.mapped && t.device != nullptr) {
                cudaFree(t.device);
            }
        }
        if (start != nullptr) {
            cudaEventDestroy(start);
        }
        if (stop != nullptr) {
            cudaEventDestroy(stop);
        }
        if (stream != nullptr) {
            cudaStreamDestroy(stream);
        }
    }
};

namespace {

void load_impl(csra_trt_engine& e, int32_t dla_core, const uint8_t* plan, size_t plan_len,
               int32_t batch) {
    set_device(e.device);
    cudaDeviceProp prop;
    cuda_check(cudaGetDeviceProperties(&prop, e.device), "cudaGetDeviceProperties",
               CSRA_TRT_NO_CUDA);
    const bool zero_copy = prop.integrated != 0 && prop.canMapHostMemory != 0;

    e.runtime.reset(nvinfer1::createInferRuntime(e.logger));
    if (!e.runtime) {
        fail(CSRA_TRT_DESERIALIZE, with_log("cannot create a TensorRT runtime", e.logger));
    }
    if (dla_core >= 0) {
        e.runtime->setDLACore(dla_core);
    }
    e.engine.reset(e.runtime->deserializeCudaEngine(plan, plan_len));
    if (!e.engine) {
        fail(CSRA_TRT_DESERIALIZE, with_log("TensorRT cannot deserialize the engine", e.logger));
    }
    e.context.reset(e.engine->createExecutionContext());
    if (!e.context) {
        fail(CSRA_TRT_DESERIALIZE, with_log("cannot create an execution context", e.logger));
    }
    cuda_check(cudaStreamCreateWithFlags(&e.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cuda_check(cudaEventCreate(&e.start), "cudaEventCreate");
    cuda_check(cudaEventCreate(&e.stop), "cudaEventCreate");

    const int32_t n = e.engine->getNbIOTensors();
    e.tensors.resize(static_cast<size_t>(n));
    // Inputs first: the output shapes follow from the input shapes set on the context.
    for (int pass = 0; pass < 2; ++pass) {
        for (int32_t i = 0; i < n; ++i) {
            const char* name = e.engine->getIOTensorName(i);
            const bool is_input =
                e.engine->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
            if (is_input != (pass == 0)) {
                continue;
            }
            if (e.engine->getTensorDataType(name) != nvinfer1::DataType::kFLOAT) {
                fail(CSRA_TRT_INVALID_ARGUMENT,
                     std::string("tensor ") + name +
                         " is not float32; csra exports keep float32 inputs and outputs");
            }
            auto dims = e.engine->getTensorShape(name);
            if (is_input && dims.nbDims > 0 && dims.d[0] < 0) {
                dims.d[0] = batch;
                if (!e.context->setInputShape(name, dims)) {
                    fail(CSRA_TRT_INVALID_ARGUMENT,
                         with_log("batch " + std::to_string(batch) +
                                      " is outside the engine's profile",
                                  e.logger));
                }
            }
            if (!is_input) {
                dims = e.context->getTensorShape(name);
            }
            if (dims.nbDims > CSRA_TRT_MAX_DIMS || volume(dims, 0) < 0) {
                fail(CSRA_TRT_INVALID_ARGUMENT,
                     std::string("tensor ") + name + " has the unusable shape " + dims_text(dims));
            }
            Tensor& t = e.tensors[static_cast<size_t>(i)];
            t.name = name;
            t.is_input = is_input;
            t.nb_dims = dims.nbDims;
            for (int32_t d = 0; d < dims.nbDims; ++d) {
                t.dims[d] = static_cast<int64_t>(dims.d[d]);
            }
            t.len = static_cast<size_t>(volume(dims, 0));
            const size_t bytes = std::max<size_t>(t.len, 1) * sizeof(float);
            if (zero_copy) {
                cuda_check(cudaHostAlloc(reinterpret_cast<void**>(&t.host), bytes,
                                         cudaHostAllocMapped),
                           "cudaHostAlloc (mapped)");
                cuda_check(cudaHostGetDevicePointer(&t.device, t.host, 0),
                           "cudaHostGetDevicePointer");
                t.mapped = true;
            } else {
                cuda_check(cudaMallocHost(reinterpret_cast<void**>(&t.host), bytes),
                           "cudaMallocHost");
                cuda_check(cudaMalloc(&t.device, bytes), "cudaMalloc");
            }
            if (!e.context->setTensorAddress(name, t.device)) {
                fail(CSRA_TRT_RUN, with_log(std::string("cannot bind tensor ") + name, e.logger));
            }
        }
    }
}

void run_impl(csra_trt_engine& e, float* network_ms) {
    cuda_check(cudaSetDevice(e.device), "cudaSetDevice");
    cuda_check(cudaEventRecord(e.start, e.stream), "cudaEventRecord");
    for (const Tensor& t : e.tensors) {
        if (t.is_input && !t.mapped) {
            cuda_check(cudaMemcpyAsync(t.device, t.host, t.len * sizeof(float),
                                       cudaMemcpyHostToDevice, e.stream),
                       "cudaMemcpyAsync (input)");
        }
    }
    if (!e.context->enqueueV3(e.stream)) {
        fail(CSRA_TRT_RUN, with_log("enqueueV3 failed", e.logger));
    }
    for (const Tensor& t : e.tensors) {
        if (!t.is_input && !t.mapped) {
            cuda_check(cudaMemcpyAsync(t.host, t.device, t.len * sizeof(float),
                                       cudaMemcpyDeviceToHost, e.stream),
                       "cudaMemcpyAsync (output)");
        }
    }
    cuda_check(cudaEventRecord(e.stop, e.stream), "cudaEventRecord");
    cuda_check(cudaEventSynchronize(e.stop), "cudaEventSynchronize");
    float ms = 0.0F;
    cuda_check(cudaEventElapsedTime(&ms, e.start, e.stop), "cudaEventElapsedTime");
    *network_ms = ms;
}

const Tensor& tensor_at(const csra_trt_engine* e, int32_t index) {
    if (e == nullptr || index < 0 || static_cast<size_t>(index) >= e->tensors.size()) {
        fail(CSRA_TRT_INVALID_ARGUMENT, "no I/O tensor " + std::to_string(index));
    }
    return e->tensors[static_cast<size_t>(index)];
}

}  // namespace

extern "C" {

uint32_t csra_trt_abi_version(void) { return CSRA_TRT_ABI_VERSION; }

size_t csra_trt_struct_size(int32_t which) {
    switch (which) {
    case CSRA_TRT_STRUCT_VERSIONS:
        return sizeof(csra_trt_versions);
    case CSRA_TRT_STRUCT_DEVICE:
        return sizeof(csra_trt_device);
    case CSRA_TRT_STRUCT_BUILD_OPTIONS:
        return sizeof(csra_trt_build_options);
    case CSRA_TRT_STRUCT_TENSOR:
        return sizeof(csra_trt_tensor);
    default:
        return 0;
    }
}

csra_trt_status csra_trt_init(csra_trt_versions* out, char* err, size_t err_len) {
    return guard(err, err_len, [&] {
        if (out == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null versions");
        }
        out->tensorrt_compiled = kCompiledVersion;
        out->tensorrt_loaded = normalise_trt_version(getInferLibVersion());
        out->onnx_parser = getNvOnnxParserVersion();
        out->cuda_runtime = 0;
        out->cuda_driver = 0;
        const int32_t loaded_major = out->tensorrt_loaded / 10000;
        const int32_t loaded_minor = (out->tensorrt_loaded / 100) % 100;
        // Within a major version TensorRT keeps its API; an older minor may lack what the
        // headers declare, a newer one is compatible.
        if (loaded_major != NV_TENSORRT_MAJOR ||
            loaded_minor < NV_TENSORRT_MINOR) {
            fail(CSRA_TRT_VERSION_MISMATCH,
                 "the shim was compiled against TensorRT " + std::to_string(NV_TENSORRT_MAJOR) +
                     "." + std::to_string(NV_TENSORRT_MINOR) + " but libnvinfer is " +
                     std::to_string(loaded_major) + "." + std::to_string(loaded_minor) +
                     "; rebuild csra-edge on this machine");
        }
        int runtime = 0;
        int driver = 0;
        cudaRuntimeGetVersion(&runtime);
        cudaDriverGetVersion(&driver);
        out->cuda_runtime = runtime;
        out->cuda_driver = driver;
        int count = 0;
        const cudaError_t rc = cudaGetDeviceCount(&count);
        if (rc != cudaSuccess || count == 0) {
            fail(CSRA_TRT_NO_CUDA,
                 rc != cudaSuccess
                     ? std::string("the CUDA runtime cannot start: ") + cudaGetErrorName(rc) +
                           " (" + cudaGetErrorString(rc) + ")"
                     : std::string("the CUDA runtime sees no GPU"));
        }
    });
}

csra_trt_status csra_trt_device_info(int32_t device, csra_trt_device* out, char* err,
                                     size_t err_len) {
    return guard(err, err_len, [&] {
        if (out == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null device");
        }
        set_device(device);
        cudaDeviceProp prop;
        cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties",
                   CSRA_TRT_NO_CUDA);
        std::memset(out, 0, sizeof(*out));
        std::snprintf(out->name, sizeof(out->name), "%s", prop.name);
        out->compute_major = prop.major;
        out->compute_minor = prop.minor;
        out->integrated = prop.integrated;
        out->can_map_host_memory = prop.canMapHostMemory;
        out->total_memory = static_cast<uint64_t>(prop.totalGlobalMem);
        Logger logger;
        Owned<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
        if (!builder) {
            fail(CSRA_TRT_NO_CUDA, with_log("cannot create a TensorRT builder", logger));
        }
        out->fast_fp16 = builder->platformHasFastFp16() ? 1 : 0;
        out->fast_int8 = builder->platformHasFastInt8() ? 1 : 0;
        out->dla_cores = builder->getNbDLACores();
    });
}

csra_trt_status csra_trt_build(const csra_trt_build_options* options, const uint8_t* onnx,
                               size_t onnx_len, uint8_t** plan, size_t* plan_len, char* err,
                               size_t err_len) {
    return guard(err, err_len, [&] {
        if (options == nullptr || onnx == nullptr || plan == nullptr || plan_len == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null argument to csra_trt_build");
        }
        *plan = nullptr;
        *plan_len = 0;
        build_impl(*options, onnx, onnx_len, plan, plan_len);
    });
}

void csra_trt_free_plan(uint8_t* plan) { std::free(plan); }

csra_trt_status csra_trt_engine_load(int32_t device, int32_t dla_core, const uint8_t* plan,
                                     size_t plan_len, int32_t batch, csra_trt_engine** out,
                                     char* err, size_t err_len) {
    return guard(err, err_len, [&] {
        if (plan == nullptr || out == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null argument to csra_trt_engine_load");
        }
        *out = nullptr;
        std::unique_ptr<csra_trt_engine> engine(new csra_trt_engine());
        engine->device = device;
        load_impl(*engine, dla_core, plan, plan_len, batch);
        *out = engine.release();
    });
}

int32_t csra_trt_engine_tensor_count(const csra_trt_engine* engine) {
    return engine == nullptr ? 0 : static_cast<int32_t>(engine->tensors.size());
}

csra_trt_status csra_trt_engine_tensor(const csra_trt_engine* engine, int32_t index,
                                       csra_trt_tensor* out, char* err, size_t err_len) {
    return guard(err, err_len, [&] {
        const Tensor& t = tensor_at(engine, index);
        if (out == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null tensor");
        }
        std::memset(out, 0, sizeof(*out));
        std::snprintf(out->name, sizeof(out->name), "%s", t.name.c_str());
        out->is_input = t.is_input ? 1 : 0;
        out->nb_dims = t.nb_dims;
        std::copy(t.dims, t.dims + t.nb_dims, out->dims);
    });
}

csra_trt_status csra_trt_engine_set_input(csra_trt_engine* engine, int32_t index,
                                          const float* data, size_t len, char* err,
                                          size_t err_len) {
    return guard(err, err_len, [&] {
        const Tensor& t = tensor_at(engine, index);
        if (!t.is_input || data == nullptr || len != t.len) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "input " + t.name + " takes " +
                                                std::to_string(t.len) + " values, got " +
                                                std::to_string(len));
        }
        std::memcpy(t.host, data, len * sizeof(float));
    });
}

csra_trt_status csra_trt_engine_run(csra_trt_engine* engine, float* network_ms, char* err,
                                    size_t err_len) {
    return guard(err, err_len, [&] {
        if (engine == nullptr || network_ms == nullptr) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "null argument to csra_trt_engine_run");
        }
        run_impl(*engine, network_ms);
    });
}

csra_trt_status csra_trt_engine_get_output(const csra_trt_engine* engine, int32_t index,
                                           float* data, size_t len, char* err, size_t err_len) {
    return guard(err, err_len, [&] {
        const Tensor& t = tensor_at(engine, index);
        if (t.is_input || data == nullptr || len != t.len) {
            fail(CSRA_TRT_INVALID_ARGUMENT, "output " + t.name + " holds " +
                                                std::to_string(t.len) + " values, asked for " +
                                                std::to_string(len));
        }
        std::memcpy(data, t.host, len * sizeof(float));
    });
}

void csra_trt_engine_free(csra_trt_engine* engine) {
    try {
        delete engine;
    } catch (...) {
        // A destructor that throws must not unwind into Rust; the memory is lost.
    }
}

}  // extern "C"
