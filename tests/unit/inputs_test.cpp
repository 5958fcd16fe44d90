#include "inputs.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mexport/errors.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;

// Writes a tensor the way numpy.save does (format 1.0, header padded to 64 bytes).
std::string writeNpy(const std::string& name, const at::Tensor& t, const std::string& descr,
                     bool fortran = false) {
  std::string shape;
  for (int64_t d : t.sizes()) shape += std::to_string(d) + ", ";
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" +
                       shape + "), }";
  header += std::string(64 - (10 + header.size() + 1) % 64, ' ') + "\n";
  const fs::path file =
      fs::temp_directory_path() / ("mexport_" + name + "_" + std::to_string(::getpid()) + ".npy");
  std::ofstream out(file, std::ios::binary);
  const uint16_t size = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.write(reinterpret_cast<const char*>(&size), 2);
  out << header;
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  return file.string();
}

TEST(Inputs, ReadsNpyFilesOfSeveralDtypes) {
  const at::Tensor ints = at::arange(12, at::kLong).reshape({3, 4});
  EXPECT_TRUE(at::equal(readNpy(writeNpy("ints", ints, "<i8")), ints));
  const at::Tensor floats = at::randn({2, 5});
  EXPECT_TRUE(at::equal(readNpy(writeNpy("floats", floats, "<f4")), floats));
  const at::Tensor flags = at::rand({4}) > 0.5;
  EXPECT_TRUE(at::equal(readNpy(writeNpy("bools", flags, "|b1")), flags));
}

TEST(Inputs, NpyBytesReadBack) {
  for (const at::Tensor& t : {at::randn({3, 5}), at::arange(7, at::kLong), at::rand({2, 2}) > 0.5,
                              at::randn({4}).to(at::kHalf)}) {
    const fs::path file =
        fs::temp_directory_path() / ("mexport_roundtrip_" + std::to_string(::getpid()) + ".npy");
    std::ofstream(file, std::ios::binary) << npyBytes(t);
    EXPECT_TRUE(at::equal(readNpy(file.string()), t)) << t.scalar_type();
  }
}

TEST(Inputs, RejectsWhatItCannotReadWithAReason) {
  const at::Tensor t = at::zeros({2, 2});
  EXPECT_THROW(readNpy(writeNpy("fortran", t, "<f4", true)), UsageError);
  EXPECT_THROW(readNpy(writeNpy("complex", t, "<c8")), UsageError);
  EXPECT_THROW(readNpy("/nonexistent.npy"), UsageError);
}

TEST(Inputs, GeneratedInputsAreSeededAndRespectTheSpec) {
  InputSpec ids{"ids", {2, 8}, "int64", std::make_pair(5.0, 9.0), std::nullopt, "", {}};
  InputSpec mask{"mask", {2, 8}, "int64", std::nullopt, 1.0, "", {}};
  InputSpec x{"x", {3}, "float16", std::nullopt, std::nullopt, "", {}};
  const auto a = makeInputs({ids, mask, x}, 3);
  const auto b = makeInputs({ids, mask, x}, 3);
  const auto c = makeInputs({ids, mask, x}, 4);
  EXPECT_TRUE(at::equal(a[0], b[0]));
  EXPECT_FALSE(at::equal(a[0], c[0]));
  EXPECT_GE(a[0].min().item<int64_t>(), 5);
  EXPECT_LT(a[0].max().item<int64_t>(), 9);
  EXPECT_TRUE(at::equal(a[1], at::ones({2, 8}, at::kLong)));
  EXPECT_EQ(a[2].scalar_type(), at::kHalf);
}

}  // namespace
}  // namespace mexport
