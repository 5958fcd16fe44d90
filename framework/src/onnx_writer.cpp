#include "onnx_writer.h"

#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <filesystem>
#include <vector>

#include "mexport/errors.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;
using onnx::TensorProto;

// As onnx's convert_model_to_external_data (size_threshold=1024): smaller
// tensors stay in the ONNX file.
constexpr size_t kMinExternalBytes = 1024;
// As ONNX Runtime writes external data (ModelSavingOptions: align_threshold
// 1 MiB, alignment 4096): a large tensor starts on a page boundary, so a
// reader can map it into memory instead of copying it.
constexpr int64_t kAlignAboveBytes = int64_t{1} << 20;
constexpr int64_t kAlignment = 4096;
// A large tensor is written in pieces this big, so that a progress display moves.
constexpr size_t kPieceBytes = size_t{16} << 20;

double gigabytes(int64_t bytes) { return static_cast<double>(bytes) / 1e9; }

bool goesToDataFile(const TensorProto& tensor) {
  return tensor.has_raw_data() && tensor.raw_data().size() >= kMinExternalBytes &&
         !tensor.has_segment();
}

void addEntry(TensorProto& tensor, const std::string& key, const std::string& value) {
  auto* entry = tensor.add_external_data();
  entry->set_key(key);
  entry->set_value(value);
}

// The tensor without its bytes, pointing at them in the data file.
TensorProto externalReference(const TensorProto& tensor, const std::string& location,
                              int64_t offset) {
  TensorProto reference;
  *reference.mutable_dims() = tensor.dims();
  if (tensor.has_data_type()) reference.set_data_type(tensor.data_type());
  if (tensor.has_name()) reference.set_name(tensor.name());
  if (tensor.has_doc_string()) reference.set_doc_string(tensor.doc_string());
  addEntry(reference, "location", location);
  addEntry(reference, "offset", std::to_string(offset));
  addEntry(reference, "length", std::to_string(tensor.raw_data().size()));
  reference.set_data_location(TensorProto::EXTERNAL);
  return reference;
}

// The model with the initializers at `offsets` (-1: stays inline) replaced by
// references into the data file. Copied field by field: copying the whole
// model would copy the weights too.
onnx::ModelProto withExternalReferences(const onnx::ModelProto& model,
                                        const std::vector<int64_t>& offsets,
                                        const std::string& location) {
  onnx::ModelProto out;
  if (model.has_ir_version()) out.set_ir_version(model.ir_version());
  *out.mutable_opset_import() = model.opset_import();
  if (model.has_producer_name()) out.set_producer_name(model.producer_name());
  if (model.has_producer_version()) out.set_producer_version(model.producer_version());
  if (model.has_domain()) out.set_domain(model.domain());
  if (model.has_model_version()) out.set_model_version(model.model_version());
  if (model.has_doc_string()) out.set_doc_string(model.doc_string());
  *out.mutable_metadata_props() = model.metadata_props();
  *out.mutable_training_info() = model.training_info();
  *out.mutable_functions() = model.functions();

  const onnx::GraphProto& graph = model.graph();
  onnx::GraphProto& g = *out.mutable_graph();
  *g.mutable_node() = graph.node();
  if (graph.has_name()) g.set_name(graph.name());
  for (int i = 0; i < graph.initializer_size(); ++i)
    *g.add_initializer() = offsets[i] < 0
                               ? graph.initializer(i)
                               : externalReference(graph.initializer(i), location, offsets[i]);
  *g.mutable_sparse_initializer() = graph.sparse_initializer();
  if (graph.has_doc_string()) g.set_doc_string(graph.doc_string());
  *g.mutable_input() = graph.input();
  *g.mutable_output() = graph.output();
  *g.mutable_value_info() = graph.value_info();
  *g.mutable_quantization_annotation() = graph.quantization_annotation();
  return out;
}

// Serialises straight into the file: the weights (large byte fields) go to the
// sink from where they lie in the model (protobuf's aliasing), the rest
// through a 1 MiB buffer, so no byte is copied twice.
void serializeTo(const onnx::ModelProto& model, const OutputFiles::ByteSink& sink) {
  class SinkStream final : public google::protobuf::io::ZeroCopyOutputStream {
   public:
    explicit SinkStream(const OutputFiles::ByteSink& sink) : sink_(sink), buffer_(1 << 20) {}
    bool Next(void** data, int* size) override {
      flush();
      *data = buffer_.data();
      *size = static_cast<int>(buffer_.size());
      used_ = buffer_.size();
      return true;
    }
    void BackUp(int count) override { used_ -= static_cast<size_t>(count); }
    int64_t ByteCount() const override { return written_ + static_cast<int64_t>(used_); }
    bool AllowsAliasing() const override { return true; }
    bool WriteAliasedRaw(const void* data, int size) override {
      flush();
      sink_(std::string_view(static_cast<const char*>(data), static_cast<size_t>(size)));
      written_ += size;
      return true;
    }
    void flush() {
      if (used_ == 0) return;
      sink_(std::string_view(buffer_.data(), used_));
      written_ += static_cast<int64_t>(used_);
      used_ = 0;
    }

   private:
    const OutputFiles::ByteSink& sink_;
    std::vector<char> buffer_;
    size_t used_ = 0;  // bytes of buffer_ handed out and not backed up
    int64_t written_ = 0;
  } stream(sink);
  model.ByteSizeLong();  // SerializeWithCachedSizes needs the sizes
  {
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.EnableAliasing(true);
    model.SerializeWithCachedSizes(&coded);
    if (coded.HadError()) throw ExportError("cannot serialise the ONNX model");
  }  // the destructor hands the last bytes back to the stream
  stream.flush();
}

}  // namespace

std::string externalDataPath(const std::string& onnx_path) { return onnx_path + ".data"; }

void writeOnnxFile(const onnx::ModelProto& model, const std::string& onnx_path, ExternalData mode,
                   int64_t threshold, OutputFiles& out) {
  const auto size = static_cast<int64_t>(model.ByteSizeLong());
  if (mode == ExternalData::kNever || (mode == ExternalData::kAuto && size <= threshold)) {
    if (size > kProtobufLimitBytes)
      throw ExportError(fmt::format(
          "the ONNX model is {:.2f} GB, past protobuf's 2 GiB limit; write its weights to a data "
          "file with --external-data (export.external_data: auto or always)",
          gigabytes(size)));
    out.writeStreaming(onnx_path,
                       [&](const OutputFiles::ByteSink& sink) { serializeTo(model, sink); });
    return;
  }

  const onnx::GraphProto& graph = model.graph();
  std::vector<int64_t> offsets(graph.initializer_size(), -1);
  int64_t end = 0;
  for (int i = 0; i < graph.initializer_size(); ++i) {
    const TensorProto& tensor = graph.initializer(i);
    if (!goesToDataFile(tensor)) continue;
    const auto bytes = static_cast<int64_t>(tensor.raw_data().size());
    offsets[i] = bytes >= kAlignAboveBytes ? (end + kAlignment - 1) / kAlignment * kAlignment : end;
    end = offsets[i] + bytes;
  }
  const std::string data_path = externalDataPath(onnx_path);
  const onnx::ModelProto skeleton =
      withExternalReferences(model, offsets, fs::path(data_path).filename().string());
  const auto skeleton_size = static_cast<int64_t>(skeleton.ByteSizeLong());
  if (skeleton_size > kProtobufLimitBytes)
    throw ExportError(fmt::format(
        "the ONNX graph is {:.2f} GB even with its weights in {}, past protobuf's 2 GiB limit",
        gigabytes(skeleton_size), data_path));

  out.writeStreaming(data_path, [&](const OutputFiles::ByteSink& sink) {
    int64_t written = 0;
    for (int i = 0; i < graph.initializer_size(); ++i) {
      if (offsets[i] < 0) continue;
      sink(std::string(static_cast<size_t>(offsets[i] - written), '\0'));  // alignment padding
      const std::string_view bytes = graph.initializer(i).raw_data();
      for (size_t done = 0; done < bytes.size(); done += kPieceBytes)
        sink(bytes.substr(done, kPieceBytes));
      written = offsets[i] + static_cast<int64_t>(bytes.size());
    }
  });
  out.writeStreaming(onnx_path,
                     [&](const OutputFiles::ByteSink& sink) { serializeTo(skeleton, sink); });
}

}  // namespace mexport
