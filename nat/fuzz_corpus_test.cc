// Replays every file of fuzz/corpus/ through the fuzz targets' checks
// (nat/testing/fuzz_checks.h), built by gcc in the normal suite and under
// --config=asan: the seeds, and each input that ever crashed a fuzz target
// (kept there as a regression; see fuzz/README.md).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nat/testing/fuzz_checks.h"

namespace natd {
namespace {

namespace fs = std::filesystem;
using Check = std::string (*)(const uint8_t*, size_t);

// Runs `check` over fuzz/corpus/<target>/ (a runfiles path); returns how many
// files it read.
size_t ReplayCorpus(const std::string& target, Check check) {
  const fs::path dir = fs::path("fuzz/corpus") / target;
  EXPECT_TRUE(fs::is_directory(dir)) << dir << " is missing from the test's data";
  if (!fs::is_directory(dir)) return 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // An exact-size heap copy, so that ASan sees any read past the input.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>(bytes.size(), 1)]);
    std::copy(bytes.begin(), bytes.end(), buf.get());
    EXPECT_EQ(check(buf.get(), bytes.size()), "") << f;
  }
  return files.size();
}

TEST(FuzzCorpusTest, PacketView) { EXPECT_GT(ReplayCorpus("packet_view_fuzz", testing::CheckPacketView), 0u); }

TEST(FuzzCorpusTest, Translate) { EXPECT_GT(ReplayCorpus("translate_fuzz", testing::CheckTranslate), 0u); }

TEST(FuzzCorpusTest, PortSet) { EXPECT_GT(ReplayCorpus("port_set_fuzz", testing::CheckPortSet), 0u); }

}  // namespace
}  // namespace natd
