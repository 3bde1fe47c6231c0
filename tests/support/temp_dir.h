// A temporary directory for a test, removed with everything in it at the end.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace millrace::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "millrace-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A directory of this test process's own, removed at exit: for names that
// must not collide with another process running the same test (ctest -j, or
// another checkout's suite). ::testing::TempDir() is a shared /tmp.
inline const std::string& process_temp_dir() {
  static const TempDir dir;
  return dir.path();
}

}  // namespace millrace::testing
